package bench

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/internal/torchrt"
)

// Spread summarises repeated rates: the median, the quartiles and the
// extremes.
type Spread struct {
	Median float64 `json:"median"`
	P25    float64 `json:"p25"`
	P75    float64 `json:"p75"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Summarize returns the spread of xs (quartiles by linear interpolation
// between order statistics); zero for no values.
func Summarize(xs []float64) Spread {
	if len(xs) == 0 {
		return Spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return Spread{Median: quantile(s, 0.5), P25: quantile(s, 0.25), P75: quantile(s, 0.75), Min: s[0], Max: s[len(s)-1]}
}

// quantile of sorted values, interpolating linearly.
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	lo := int(pos)
	if lo+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	frac := pos - float64(lo)
	return sorted[lo]*(1-frac) + sorted[lo+1]*frac
}

// procStatus reads one "Key: N kB" line of /proc/self/status in bytes.
func procStatus(key string) (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read memory use: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), key+":")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("read memory use: unexpected %s line %q", key, sc.Text())
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read memory use: %s: %w", key, err)
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read memory use: %w", err)
	}
	return 0, fmt.Errorf("read memory use: no %s line in /proc/self/status", key)
}

// PeakRSS is the process's peak resident set size in bytes (VmHWM).
func PeakRSS() (int64, error) { return procStatus("VmHWM") }

// RSS is the process's resident set size in bytes now (VmRSS).
func RSS() (int64, error) { return procStatus("VmRSS") }

// settledRSS is the RSS after the garbage collector has run, the
// finalizers it queued (gotch frees C tensors in finalizers) have had a
// moment, and malloc has returned the memory it holds free: garbage not yet
// collected is not a leak, and neither is the free memory torchrt's trim
// threshold lets malloc keep for the next step (up to 256 MiB, which in a
// single arena can grow by fragmentation over the first few hundred steps).
func settledRSS() (int64, error) {
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	runtime.GC()
	debug.FreeOSMemory()
	torchrt.ReleaseFreeMemory()
	return RSS()
}

// cpuSeconds is the CPU time (user + system) the process has used, all
// threads together; 0 where it cannot be read.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// MatmulGFLOPS measures the machine's matrix-multiply ceiling through
// libtorch on the CPU, at the current intra-op thread count: the best of
// reps float32 n×n products after one warm-up (the best, because load from
// other processes only ever lowers a rate). Run it on a goroutine locked
// to its OS thread.
func MatmulGFLOPS(n int64, reps int) (float64, error) {
	if n < 1 || reps < 1 {
		return 0, fmt.Errorf("matmul ceiling: size %d and repetitions %d must be positive", n, reps)
	}
	a, err := ts.Rand([]int64{n, n}, gotch.Float, gotch.CPU)
	if err != nil {
		return 0, fmt.Errorf("matmul ceiling: %w", err)
	}
	defer a.Drop()
	b, err := ts.Rand([]int64{n, n}, gotch.Float, gotch.CPU)
	if err != nil {
		return 0, fmt.Errorf("matmul ceiling: %w", err)
	}
	defer b.Drop()
	var best float64
	for i := -1; i < reps; i++ {
		start := time.Now()
		c, err := a.Matmul(b, false)
		if err != nil {
			return 0, fmt.Errorf("matmul ceiling: %w", err)
		}
		sec := time.Since(start).Seconds()
		_ = c.Drop()
		if i >= 0 && sec > 0 {
			best = max(best, 2*float64(n)*float64(n)*float64(n)/sec/1e9)
		}
	}
	return best, nil
}
