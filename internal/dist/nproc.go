package dist

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/robarch/robarch/internal/devicename"
)

// CheckNprocPerNode refuses a process count the machine cannot run before any
// work (naming the --nproc-per-node and --device flags): more CPU processes than cores (each needs at least one), or
// data-parallel training on CUDA (no NCCL yet). A sharded evaluation on
// CUDA is allowed: it only sums counts, which Gloo does on the CPU.
func CheckNprocPerNode(n int, device string, launched, training bool) error {
	dev, err := devicename.Parse(device)
	switch {
	case err != nil:
		return fmt.Errorf("--device: %w", err)
	case n < 1:
		return fmt.Errorf("--nproc-per-node %d: must be at least 1", n)
	case n == 1 || launched:
		return nil
	case dev.CUDA && training:
		return fmt.Errorf("--nproc-per-node %d with --device %s: data-parallel training on CUDA needs c10d's NCCL backend, which this build does not have yet; use --device cpu", n, device)
	case dev.CUDA && strings.ToLower(strings.TrimSpace(device)) != "cuda":
		return fmt.Errorf("--nproc-per-node %d with --device %s: several processes take one GPU each (cuda:LOCAL_RANK); give --device cuda", n, device)
	case !dev.CUDA && n > runtime.NumCPU():
		return fmt.Errorf("--nproc-per-node %d exceeds the %d CPU cores of this machine: each process needs at least one", n, runtime.NumCPU())
	}
	if !Available() {
		return fmt.Errorf("--nproc-per-node %d: this build has no c10d Gloo backend; install libgloo-dev and run `make setup`", n)
	}
	return nil
}
