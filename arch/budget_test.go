package arch_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/arch"
)

func TestParseBudget(t *testing.T) {
	good := map[string]int64{
		"26M": 26_000_000, "500K": 500_000, "1.5M": 1_500_000, "26143228": 26_143_228,
		"26m": 26_000_000, " 0.3M ": 300_000, "2G": 2_000_000_000, "26_143_228": 26_143_228, "1.25k": 1250,
	}
	for in, want := range good {
		got, err := arch.ParseBudget(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "M", "-5M", "0", "abc", "1.5", "1.0000001K", "26MB", "1e3"} {
		_, err := arch.ParseBudget(bad)
		assert.Error(t, err, bad)
	}
}

func TestFormatBudget(t *testing.T) {
	cases := map[int64]string{26_000_000: "26M", 500_000: "500K", 1_500_000: "1.5M", 26_143_228: "26.14M", 999: "999", 2_000_000_000: "2G"}
	for n, want := range cases {
		assert.Equal(t, want, arch.FormatBudget(n))
	}
	for _, n := range []int64{26_000_000, 500_000, 1_500_000} {
		back, err := arch.ParseBudget(arch.FormatBudget(n))
		require.NoError(t, err)
		assert.Equal(t, n, back)
	}
}
