package robustbench

import (
	"github.com/robarch/robarch/data/fixturegen"

	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/attack"
)

func TestDataset(t *testing.T) {
	for _, tc := range []struct {
		name, want, err string
	}{
		{"cifar10", "cifar10", ""},
		{"cifar100", "cifar100", ""},
		{"imagefolder:/data/imagenet", "imagenet", ""},
		{"fashion-mnist", "", "want cifar10, cifar100 or imagefolder:DIR"},
		{"imagefolder", "", `dataset "imagefolder"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Dataset(tc.name)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestDefaultEps(t *testing.T) {
	for _, tc := range []struct {
		dataset string
		norm    attack.Norm
		want    string
	}{
		{"cifar10", attack.Linf, "8/255"},
		{"cifar100", attack.Linf, "8/255"},
		{"imagenet", attack.Linf, "4/255"},
		{"cifar10", attack.L2, "0.5"},
		{"cifar100", attack.L2, ""},
		{"imagenet", attack.L2, ""},
	} {
		t.Run(fmt.Sprint(tc.dataset, tc.norm), func(t *testing.T) {
			got, err := DefaultEps(tc.dataset, tc.norm)
			if tc.want == "" {
				assert.ErrorContains(t, err, "RobustBench has no "+string(tc.norm)+" leaderboard for "+tc.dataset)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestPercentLikeRobustBench(t *testing.T) {
	for _, tc := range []struct {
		frac float64
		want string
	}{
		{0.9327, "93.27"}, {0.5, "50.0"}, {0.71066, "71.07"}, {1, "100.0"}, {0, "0.0"}, {0.123449, "12.34"},
	} {
		assert.Equal(t, tc.want, Percent(tc.frac), "%v", tc.frac)
	}
}

func TestUpdateModelInfo(t *testing.T) {
	m := ModelInfo{Dataset: "cifar10", Eps: "8/255", Clean: 0.9327, Robust: 0.71066}
	for _, tc := range []struct {
		name string
		old  []byte
		want map[string]any // fields checked beyond the ones m sets
		err  string
	}{
		{"new file", nil, map[string]any{"name": nil, "footnote": nil}, ""},
		{"kept fields", []byte(`{"name": "Peng2023", "footnote": "50M synthetic images", "additional_data": false, "eps": "1/255"}`),
			map[string]any{"name": "Peng2023", "footnote": "50M synthetic images", "additional_data": false}, ""},
		{"unknown fields kept", []byte(`{"zz": 1, "aa": "x"}`), map[string]any{"zz": 1.0, "aa": "x"}, ""},
		{"empty file", []byte{}, nil, "not a JSON object"},
		{"an array", []byte(`[1]`), nil, "not a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := UpdateModelInfo(tc.old, m)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			var got map[string]any
			require.NoError(t, json.Unmarshal(out, &got), string(out))
			assert.Equal(t, "cifar10", got["dataset"])
			assert.Equal(t, "8/255", got["eps"])
			assert.Equal(t, "93.27", got["clean_acc"])
			assert.Equal(t, "71.07", got["autoattack_acc"])
			assert.EqualValues(t, 1, got["number_forward_passes"])
			for _, k := range ModelInfoKeys {
				assert.Contains(t, got, k, "every ModelInfo field is written")
			}
			for k, v := range tc.want {
				assert.Equal(t, v, got[k], k)
			}
		})
	}
}

// The fields come in ModelInfo's order, then unknown ones sorted, one a line.
func TestUpdateModelInfoOrder(t *testing.T) {
	out, err := UpdateModelInfo([]byte(`{"zz": 1, "aa": 2}`), ModelInfo{Dataset: "cifar10", Eps: "8/255"})
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Len(t, lines, 2+len(ModelInfoKeys)+2)
	for i, k := range append(append([]string{}, ModelInfoKeys...), "aa", "zz") {
		assert.True(t, strings.HasPrefix(strings.TrimSpace(lines[i+1]), `"`+k+`": `), "line %d: %s", i+1, lines[i+1])
	}
}

func TestWriteModelInfo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model_info.json")
	require.NoError(t, WriteModelInfo(path, ModelInfo{Dataset: "cifar10", Eps: "8/255", Clean: 0.5, Robust: 0.25}))
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var mi map[string]any
	require.NoError(t, json.Unmarshal(raw, &mi))
	mi["footnote"] = "filled in"
	raw, err = json.Marshal(mi)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, raw, 0o644))

	require.NoError(t, WriteModelInfo(path, ModelInfo{Dataset: "cifar10", Eps: "8/255", Clean: 0.75, Robust: 0.5}))
	raw, err = os.ReadFile(path)
	require.NoError(t, err)
	mi = map[string]any{}
	require.NoError(t, json.Unmarshal(raw, &mi))
	assert.Equal(t, "filled in", mi["footnote"])
	assert.Equal(t, "75.0", mi["clean_acc"])

	require.NoError(t, os.WriteFile(path, []byte("not json"), 0o644))
	assert.ErrorContains(t, WriteModelInfo(path, ModelInfo{}), path+": existing file is not a JSON object")
}

// fakeCIFAR10 writes a CIFAR-10 binary folder with n test records.
func fakeCIFAR10(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, fixturegen.WriteCIFAR10(dir, n))
	return dir
}

func TestOpenTakesTheFirstTestPoints(t *testing.T) {
	dir := fakeCIFAR10(t, 12)
	for _, tc := range []struct {
		name string
		n    int
		want int
		err  string
	}{
		{"default: the whole split, at most 10,000", 0, 12, ""},
		{"first n", 5, 5, ""},
		{"all", 12, 12, ""},
		{"too many", 13, 0, "only 12"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			splits, err := Open("cifar10", dir, tc.n)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, splits.Test.Len())
			for i := range tc.want {
				assert.EqualValues(t, i%10, splits.Test.Label(i), "test point %d in file order", i)
			}
		})
	}
}
