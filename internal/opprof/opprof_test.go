package opprof_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/internal/opprof"
	"github.com/robarch/robarch/internal/torchrt"
)

func TestMain(m *testing.M) {
	torchrt.SetThreads(1) // the machine is shared
	os.Exit(m.Run())
}

type Table = opprof.Table

// TestRecordCountsOperatorsAndBackward profiles 3 matrix products and one
// backward pass through the last: each appears with its exact call count,
// self time never exceeds total time, and a caller's total covers its
// callee's.
func TestRecordCountsOperatorsAndBackward(t *testing.T) {
	a := ts.MustRandn([]int64{64, 64}, gotch.Float, gotch.CPU).MustSetRequiresGrad(true, true)
	defer a.MustDrop()
	b := ts.MustRandn([]int64{64, 64}, gotch.Float, gotch.CPU)
	defer b.MustDrop()
	tab, err := opprof.Record(func() error {
		var last *ts.Tensor
		for range 3 {
			if last != nil {
				last.MustDrop()
			}
			last = a.MustMm(b, false)
		}
		s := last.MustSum(gotch.Float, true)
		defer s.MustDrop()
		last.MustDrop()
		return s.Backward()
	})
	require.NoError(t, err)
	mm, ok := tab.Find("aten::mm")
	require.True(t, ok, "aten::mm recorded: %v", tab)
	// 3 forward products and 1 in MmBackward (the gradient for a; b needs none).
	assert.Equal(t, 4.0, mm.Calls)
	bw, ok := tab.Find("autograd::engine::evaluate_function: MmBackward0")
	require.True(t, ok, "backward recorded: %v", tab)
	assert.Equal(t, 1.0, bw.Calls)
	for _, op := range tab {
		assert.LessOrEqual(t, op.SelfUS, op.TotalUS+1e-6, op.Name)
		assert.GreaterOrEqual(t, op.SelfUS, -1e-6, op.Name)
	}
	// MmBackward0 calls aten::mm (via mm's derivative), so its total
	// includes more than its own self time.
	assert.Greater(t, bw.TotalUS, bw.SelfUS)
	half, _ := tab.PerStep(2).Find("aten::mm")
	assert.InDelta(t, 4.0/2, half.Calls, 1e-9)
}

// TestRecordReturnsTheWorksError stops the profiler and hands fn's error
// back; a second record then works (the profiler was turned off).
func TestRecordReturnsTheWorksError(t *testing.T) {
	_, err := opprof.Record(func() error { return assert.AnError })
	require.ErrorIs(t, err, assert.AnError)
	tab, err := opprof.Record(func() error {
		x := ts.MustOnes([]int64{4}, gotch.Float, gotch.CPU)
		return x.Drop()
	})
	require.NoError(t, err)
	_, ok := tab.Find("aten::ones")
	assert.True(t, ok, "aten::ones recorded: %v", tab)
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       Table
		err        string
	}{
		{"two ops", "aten::add\t2\t3.5\t4\naten::mm\t1\t10\t10\n", Table{{"aten::add", 2, 3.5, 4}, {"aten::mm", 1, 10, 10}}, ""},
		{"empty", "", nil, ""},
		{"missing field", "aten::add\t2\t3.5\n", nil, "want 4 tab-separated fields"},
		{"not a number", "aten::add\ttwo\t3.5\t4\n", nil, "field 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := opprof.Parse(tc.text)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestCompareOrdersByDifference(t *testing.T) {
	a := Table{{"aten::add", 10, 100, 100}, {"aten::mm", 2, 1000, 1000}, {"aten::relu", 1, 50, 50}}
	b := Table{{"aten::mm", 2, 900, 900}, {"aten::add", 10, 100, 100}, {"aten::clamp", 1, 30, 30}}
	got := opprof.Compare(a, b)
	names := make([]string, len(got))
	for i, p := range got {
		names[i] = p.Name
	}
	assert.Equal(t, []string{"aten::mm", "aten::relu", "aten::clamp", "aten::add"}, names)
	assert.Equal(t, 900.0, got[0].B.SelfUS)
	assert.Equal(t, 0.0, got[1].B.Calls, "relu is robarch's alone")
	assert.Equal(t, 1150.0, a.SelfUS())
}

func TestAddSumsByName(t *testing.T) {
	a := Table{{Name: "aten::mm", Calls: 2, SelfUS: 10, TotalUS: 12}, {Name: "aten::add", Calls: 1, SelfUS: 1, TotalUS: 1}}
	b := Table{{Name: "aten::relu", Calls: 3, SelfUS: 4, TotalUS: 5}, {Name: "aten::mm", Calls: 1, SelfUS: 6, TotalUS: 7}}
	sum := a.Add(b)
	assert.Equal(t, Table{
		{Name: "aten::mm", Calls: 3, SelfUS: 16, TotalUS: 19},
		{Name: "aten::add", Calls: 1, SelfUS: 1, TotalUS: 1},
		{Name: "aten::relu", Calls: 3, SelfUS: 4, TotalUS: 5},
	}, sum)
	assert.Equal(t, 2.0, a[0].Calls, "a is left as it was")
	assert.Equal(t, b, Table(nil).Add(b))
}
