package precision_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/internal/precision"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want precision.Precision
		err  bool
	}{
		{"", precision.FP32, false},
		{"fp32", precision.FP32, false},
		{"BF16", precision.BF16, false},
		{"bfloat16", precision.BF16, false},
		{"fp16", precision.FP16, false},
		{"half", precision.FP16, false},
		{"auto", precision.Auto, false},
		{"int8", "", true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := precision.Parse(tc.in)
			if tc.err {
				assert.ErrorContains(t, err, "allowed values are fp32, bf16, fp16, auto")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
