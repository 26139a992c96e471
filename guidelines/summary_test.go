package guidelines

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// One line per level with its effect, interval, pairs and verdict, in
// rank order; an adaptive sweep's pending round last.
func TestWriteVerdicts(t *testing.T) {
	a, err := Analyze(synthSweep(t, 3, false, silu, kernel5), Options{})
	require.NoError(t, err)
	var b strings.Builder
	WriteVerdicts(&b, a)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 3, b.String())
	assert.Equal(t, "sweep synth: 9 of 9 trials done, verdicts on "+MetricName(a.RobustMetric), lines[0])
	row := regexp.MustCompile(`^   \d\. (\S+)\s+[+-]\d+\.\d\d pts \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\]\s+n=3  (.+)$`)
	var labels []string
	for _, line := range lines[1:] {
		m := row.FindStringSubmatch(line)
		require.NotNil(t, m, line)
		assert.Equal(t, effectOf(t, a, m[1]).Verdict, m[2], line)
		labels = append(labels, m[1])
	}
	assert.ElementsMatch(t, []string{"activation=silu", "kernel=5"}, labels)

	adaptive, err := Analyze(withPolicy(t, synthSweep(t, 3, false, silu, kernel5,
		level{factor: se25.factor, level: "0.25", robust: 0.003, edit: se25.edit}), `{"start":3,"add":2,"max":5}`), Options{})
	require.NoError(t, err)
	b.Reset()
	WriteVerdicts(&b, adaptive)
	assert.Regexp(t, `\n  pending: round 2, seeds \[3 4\] for \[.*se_ratio=0.25.*\]\n$`, b.String())
}

// The tally, each side's verdict or "—", and the notes.
func TestWriteReplication(t *testing.T) {
	r := &Replication{NameA: "a.db", NameB: "b.db", Agree: 1,
		Levels: []ReplicatedLevel{
			{Label: "activation=silu", A: &HalfValue{Verdict: Helps, Effect: 0.05}, B: &HalfValue{Verdict: Helps, Effect: 0.04}, Agreement: Agree},
			{Label: "kernel=5", A: &HalfValue{Verdict: Hurts, Effect: -0.04}, Agreement: Missing},
		},
		Notes: []string{"trained in bf16 in a.db, fp32 in b.db"}}
	var b strings.Builder
	WriteReplication(&b, r)
	assert.Equal(t, "replication, a.db vs b.db: 1 agree, 0 consistent, 0 sign differs, 0 contradict\n"+
		"  activation=silu                      "+pad(Helps+" +5.00", 24)+" "+pad(Helps+" +4.00", 24)+" agree\n"+
		"  kernel=5                             "+pad(Hurts+" -4.00", 24)+" "+pad("—", 24)+" missing\n"+
		"  note: trained in bf16 in a.db, fp32 in b.db\n", b.String())
}

// pad is %-24s: width counted in runes.
func pad(s string, n int) string {
	return s + strings.Repeat(" ", max(0, n-len([]rune(s))))
}
