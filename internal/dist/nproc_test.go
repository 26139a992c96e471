package dist

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheckNprocPerNode(t *testing.T) {
	cores := runtime.NumCPU()
	for _, tc := range []struct {
		n                  int
		device             string
		launched, training bool
		want               string // "" = accepted
	}{
		{1, "cpu", false, true, ""},
		{4, "cuda", true, true, ""}, // a launcher's ranks are its business
		{0, "cpu", false, true, "--nproc-per-node 0: must be at least 1"},
		{2, "gpu", false, true, "--device"},
		{cores + 1, "cpu", false, true, fmt.Sprintf("--nproc-per-node %d exceeds the %d CPU cores", cores+1, cores)},
		{2, "cuda", false, true, "needs c10d's NCCL backend"},
		{2, "cuda:1", false, false, "give --device cuda"},
	} {
		err := CheckNprocPerNode(tc.n, tc.device, tc.launched, tc.training)
		if tc.want == "" {
			assert.NoError(t, err, "%+v", tc)
		} else {
			assert.ErrorContains(t, err, tc.want, "%+v", tc)
		}
	}
}
