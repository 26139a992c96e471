package recipe

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestUnread(t *testing.T) {
	tests := []struct {
		name string
		r    Recipe
		want []string // keys reported unread
	}{
		{"nothing set", Recipe{}, nil},
		{"steps under pgd", Recipe{Method: PGD, Steps: 7}, nil},
		{"steps under trades", Recipe{Method: TRADES, Steps: 7, Beta: 3}, nil},
		{"steps under fgsm-rs", Recipe{Method: FGSMRS, Steps: 7}, []string{"steps"}},
		{"steps under the default method", Recipe{Steps: 7}, []string{"steps"}},
		{"beta under pgd", Recipe{Method: PGD, Beta: 3}, []string{"beta"}},
		{"step size under standard", Recipe{Method: Standard, StepSize: 0.01}, []string{"step_size"}},
		{"step size under fgsm-rs", Recipe{Method: FGSMRS, StepSize: 0.01}, nil},
		{"peak under fgsm-rs's one-cycle", Recipe{Method: FGSMRS, PeakAt: 0.3}, nil},
		{"peak under pgd's cosine", Recipe{Method: PGD, PeakAt: 0.3}, []string{"peak_at"}},
		{"warm-up under cosine", Recipe{Method: PGD, WarmupEpochs: 1}, nil},
		{"warm-up under one-cycle", Recipe{Method: FGSMRS, WarmupEpochs: 1}, []string{"warmup_epochs"}},
		{"step schedule's keys", Recipe{Schedule: Step, Milestones: []float64{2}, Gamma: 0.5}, nil},
		{"step schedule's keys under cosine", Recipe{Schedule: Cosine, Milestones: []float64{2}, Gamma: 0.5}, []string{"milestones", "gamma"}},
		{"several at once", Recipe{Method: FGSMRS, Steps: 3, Beta: 6, Gamma: 0.1}, []string{"steps", "beta", "gamma"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, u := range tt.r.Unread() {
				got = append(got, u.Key)
				assert.Contains(t, u.Reason, "read only by", u.Key)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

// A schedule key Unread reports changes no learning rate, and one it
// does not report changes some: the list follows what LRAt reads.
func TestUnreadScheduleKeysFollowLRAt(t *testing.T) {
	keys := []struct {
		name string
		set  func(*Recipe)
	}{
		{"peak_at", func(r *Recipe) { r.PeakAt = 0.25 }},
		{"warmup_epochs", func(r *Recipe) { r.WarmupEpochs = 1.5 }},
		{"milestones", func(r *Recipe) { r.Milestones = []float64{1.5} }},
		{"gamma", func(r *Recipe) { r.Gamma = 0.3 }},
	}
	for _, s := range Schedules() {
		for _, k := range keys {
			t.Run(string(s)+"/"+k.name, func(t *testing.T) {
				base := Recipe{Method: PGD, Schedule: s, Epochs: 4}
				changed := base
				k.set(&changed)
				unread := false
				for _, u := range changed.Unread() {
					unread = unread || u.Key == k.name
				}
				a, b := base.WithDefaults(), changed.WithDefaults()
				differs := false
				for i := 0; i <= 40; i++ {
					differs = differs || a.LRAt(float64(i)/10) != b.LRAt(float64(i)/10)
				}
				assert.Equal(t, !unread, differs, "%s under %s: reported unread %v, changes the LR %v", k.name, s, unread, differs)
			})
		}
	}
}
