package evaluation

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/attack"
)

// request is eval's defaults with the given flags set.
func request(given map[string]string, checkpoint map[string]string) Request {
	r := Request{Protocol: RobArch, Dataset: "fashion-mnist", Eps: "8/255", Norm: "Linf", Size: 1000, Attacks: "pgd20,aa",
		Given: map[string]bool{}, Checkpoint: checkpoint}
	for k, v := range given {
		r.Given[k] = true
		switch k {
		case "protocol":
			r.Protocol = v
		case "dataset":
			r.Dataset = v
		case "eps":
			r.Eps = v
		case "norm":
			r.Norm = v
		case "attacks":
			r.Attacks = v
		case "model-info":
			r.ModelInfo = v
			r.Given[k] = false
		case "size":
			r.Size = 12
		}
	}
	return r
}

func TestResolve(t *testing.T) {
	trained := map[string]string{"model": "micro", "dataset": "synthetic", "eps": "0.2", "eval_eps": "0.1", "norm": "L2"}
	for _, tc := range []struct {
		name       string
		given      map[string]string
		checkpoint map[string]string
		want       Settings // From, Eps, Norm, Dataset, Size, Attacks, TrainedEps, RBDataset, EpsText checked
	}{
		{"defaults", nil, nil, Settings{Dataset: "fashion-mnist", Size: 1000, Eps: 8.0 / 255, EpsText: "8/255", Norm: attack.Linf,
			Attacks: []string{"pgd20", "aa"}, From: map[string]string{"eps": FromDefault, "norm": FromDefault, "dataset": FromDefault}}},
		{"flags", map[string]string{"eps": "0.05", "dataset": "synthetic", "attacks": " fgsm , pgd3,"}, nil,
			Settings{Dataset: "synthetic", Size: 1000, Eps: 0.05, EpsText: "0.05", Norm: attack.Linf, Attacks: []string{"fgsm", "pgd3"},
				From: map[string]string{"eps": FromFlag, "norm": FromDefault, "dataset": FromFlag}}},
		{"where the checkpoint was trained and reported", nil, trained,
			Settings{Dataset: "synthetic", Size: 1000, Eps: 0.1, EpsText: "0.1", Norm: attack.L2, Attacks: []string{"pgd20", "aa"}, TrainedEps: 0.1,
				From: map[string]string{"eps": FromCheckpoint, "norm": FromCheckpoint, "dataset": FromCheckpoint}}},
		{"flags over the checkpoint", map[string]string{"eps": "0.5"}, trained,
			Settings{Dataset: "synthetic", Size: 1000, Eps: 0.5, EpsText: "0.5", Norm: attack.L2, Attacks: []string{"pgd20", "aa"}, TrainedEps: 0.1,
				From: map[string]string{"eps": FromFlag, "norm": FromCheckpoint, "dataset": FromCheckpoint}}},
		{"a checkpoint from before eval_eps", nil, map[string]string{"eps": "0.2"},
			Settings{Dataset: "fashion-mnist", Size: 1000, Eps: 0.2, EpsText: "0.2", Norm: attack.Linf, Attacks: []string{"pgd20", "aa"}, TrainedEps: 0.2,
				From: map[string]string{"eps": FromCheckpoint, "norm": FromDefault, "dataset": FromDefault}}},
		{"a checkpoint that says nothing", nil, map[string]string{"model": "micro"},
			Settings{Dataset: "fashion-mnist", Size: 1000, Eps: 8.0 / 255, EpsText: "8/255", Norm: attack.Linf, Attacks: []string{"pgd20", "aa"},
				From: map[string]string{"eps": FromDefault, "norm": FromDefault, "dataset": FromDefault}}},
		{"robustbench: its radius, count and attack; the checkpoint not asked", map[string]string{"protocol": RobustBench, "dataset": "cifar10"}, trained,
			Settings{Dataset: "cifar10", RBDataset: "cifar10", Size: 0, Eps: 8.0 / 255, EpsText: "8/255", Norm: attack.Linf, Attacks: []string{"aa"},
				From: map[string]string{"eps": FromDefault, "norm": FromDefault, "dataset": FromFlag}}},
		{"robustbench imagenet", map[string]string{"protocol": RobustBench, "dataset": "imagefolder:/imagenet", "size": "", "attacks": "aa"}, nil,
			Settings{Dataset: "imagefolder:/imagenet", RBDataset: "imagenet", Size: 12, Eps: 4.0 / 255, EpsText: "4/255", Norm: attack.Linf, Attacks: []string{"aa"},
				From: map[string]string{"eps": FromDefault, "norm": FromDefault, "dataset": FromFlag}}},
		{"robustbench L2 with a radius given", map[string]string{"protocol": RobustBench, "dataset": "cifar100", "norm": "L2", "eps": "1.5", "model-info": "mi.json"}, nil,
			Settings{Dataset: "cifar100", RBDataset: "cifar100", Eps: 1.5, EpsText: "1.5", Norm: attack.L2, Attacks: []string{"aa"},
				From: map[string]string{"eps": FromFlag, "norm": FromFlag, "dataset": FromFlag}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Resolve(request(tc.given, tc.checkpoint))
			require.NoError(t, err)
			assert.Equal(t, tc.want.From, s.From)
			assert.InDelta(t, tc.want.Eps, s.Eps, 1e-12)
			assert.Equal(t, tc.want.EpsText, s.EpsText)
			assert.Equal(t, tc.want.Norm, s.Norm)
			assert.Equal(t, tc.want.Dataset, s.Dataset)
			assert.Equal(t, tc.want.RBDataset, s.RBDataset)
			assert.Equal(t, tc.want.Size, s.Size)
			assert.Equal(t, tc.want.Attacks, s.Attacks)
			assert.InDelta(t, tc.want.TrainedEps, s.TrainedEps, 1e-12)
		})
	}
}

func TestResolveRefuses(t *testing.T) {
	rb := func(kv ...string) map[string]string {
		m := map[string]string{"protocol": RobustBench, "dataset": "cifar10"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		given map[string]string
		want  string
	}{
		{"protocol", map[string]string{"protocol": "autoattack"}, `--protocol "autoattack": want one of robarch, robustbench`},
		{"norm", map[string]string{"norm": "L1"}, "--norm"},
		{"eps", map[string]string{"eps": "8"}, "--eps"},
		{"no attacks", map[string]string{"attacks": " , "}, "--attacks is empty"},
		{"unknown attack", map[string]string{"attacks": "cw"}, "--attacks"},
		{"model info alone", map[string]string{"model-info": "x.json"}, "--model-info needs --protocol robustbench"},
		{"robustbench dataset", rb("dataset", "fashion-mnist"), "--protocol robustbench: dataset \"fashion-mnist\": want cifar10, cifar100 or imagefolder:DIR"},
		{"robustbench attacks", rb("attacks", "pgd20"), "RobustBench runs standard AutoAttack only"},
		{"robustbench leaderboard", rb("dataset", "cifar100", "norm", "L2"), "--protocol robustbench: RobustBench has no L2 leaderboard for cifar100; give --eps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Resolve(request(tc.given, nil))
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

func TestOffRadius(t *testing.T) {
	for _, tc := range []struct {
		eps, trained float64
		want         bool
	}{
		{0.1, 0, false}, {0.1, 0.1, false}, {0.1 + 1e-13, 0.1, false}, {8.0 / 255, 0.1, true},
	} {
		assert.Equal(t, tc.want, OffRadius(tc.eps, tc.trained), "%v vs %v", tc.eps, tc.trained)
		assert.Equal(t, tc.want, Result{Eps: tc.eps, TrainedEps: tc.trained}.OffRadius())
	}
}
