package attackname

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Name
		canon   string
		metric  string
		cePGD   bool
		autoAtk bool
		pgd     bool
		stdAA   bool
	}{
		{"pgd20", PGDSteps(20), "pgd20", "pgd20_acc", true, false, true, false},
		{" PGD7-CW ", Name{Kind: PGD, Steps: 7, Loss: CW}, "pgd7-cw", "pgd7_cw_acc", false, false, true, false},
		{"pgd100-dlr", Name{Kind: PGD, Steps: 100, Loss: DLR}, "pgd100-dlr", "pgd100_dlr_acc", false, false, true, false},
		{"aa", Name{Kind: AA}, "aa", "aa_acc", false, true, false, true},
		{"AutoAttack", Name{Kind: AA}, "aa", "aa_acc", false, true, false, true},
		{"aa-fast", Name{Kind: AAFast}, "aa-fast", "aa_fast_acc", false, true, false, false},
		{"apgd-t", Name{Kind: APGDT}, "apgd-t", "apgd_t_acc", false, false, false, false},
		{"fgsm", Name{Kind: FGSM}, "fgsm", "fgsm_acc", false, false, false, false},
	}
	for _, tc := range tests {
		got, err := Parse(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
		assert.Equal(t, tc.canon, got.String(), tc.in)
		assert.Equal(t, tc.metric, got.MetricKey(), tc.in)
		assert.Equal(t, tc.cePGD, got.IsCEPGD(), tc.in)
		assert.Equal(t, tc.autoAtk, got.IsAutoAttack(), tc.in)
		assert.Equal(t, tc.pgd, got.IsPGD(), tc.in)
		assert.Equal(t, tc.stdAA, got.IsStandardAutoAttack(), tc.in)
	}
	assert.Equal(t, "pgd20", PGDSteps(20).String())
	for _, bad := range []struct{ in, want string }{
		{"pgd", "want pgdK with K >= 1"},
		{"pgd0", "want pgdK with K >= 1"},
		{"pgd20-l2", "want pgdK with K >= 1"},
		{"cw", "want one of fgsm, pgdK"},
		{"", "want one of"},
	} {
		_, err := Parse(bad.in)
		assert.ErrorContains(t, err, bad.want, bad.in)
	}
}

// Every name Names lists parses back to itself (pgdK with K = 3).
func TestNamesParse(t *testing.T) {
	for _, listed := range Names() {
		in := strings.Replace(listed, "pgdK", "pgd3", 1)
		n, err := Parse(in)
		require.NoError(t, err, listed)
		assert.Equal(t, in, n.String(), listed)
	}
}
