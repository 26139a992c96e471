// Package doctor checks the machine robarch runs on: the libtorch gotch
// was prepared for against the one found now, devices, threads, the BLAS
// in use, malloc, the matmul ceiling and what precision auto picks.
package doctor

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/sugarme/gotch"

	"github.com/robarch/robarch/bench"
	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/torchbuild"
	"github.com/robarch/robarch/internal/torchrt"
)

// Fact is one line of the report: what, and what was found.
type Fact struct{ Name, Value string }

// Report is what Check found, and the problems, each with its remedy.
type Report struct {
	Facts    []Fact
	Problems []string
}

// Check initialises the torch runtime with threads (0: its default) and
// inspects it. The error is a build gotch was not prepared for at all.
func Check(threads int) (Report, error) {
	var r Report
	b, err := torchrt.Build()
	if err != nil {
		return r, fmt.Errorf("%w; run `make setup`", err)
	}
	lt, lerr := torchbuild.Locate(os.Getenv("LIBTORCH"))
	switch {
	case lerr != nil:
		r.problem("libtorch not found now (%v): install libtorch-dev or set LIBTORCH, then run `make setup`", lerr)
	case lt.Version != b.Libtorch.Version || lt.LibDir != b.Libtorch.LibDir || lt.CUDA != b.Libtorch.CUDA:
		r.problem("gotch was prepared for libtorch %s in %s but libtorch %s in %s is found now: run `make setup`",
			b.Libtorch.Version, b.Libtorch.LibDir, lt.Version, lt.LibDir)
	}
	if _, err := os.Stat(filepath.Join(b.Libtorch.LibDir, "libtorch.so")); err != nil {
		r.problem("the linked libtorch is gone (%v): run `make setup`", err)
	}
	rt := torchrt.Init(threads)
	where := "system install"
	if b.Libtorch.Root != "" {
		where = b.Libtorch.Root
	}
	devices := "cpu"
	if cuda := torchrt.CUDADevices(); cuda > 0 {
		devices = fmt.Sprintf("cpu, %d CUDA device(s)", cuda)
	} else if b.Libtorch.CUDA {
		r.problem("libtorch has CUDA but no CUDA device is visible (driver, CUDA_VISIBLE_DEVICES?)")
	}
	// The same ceiling robarch bench reports (the best of 5 products).
	var gflops float64
	if err := torchrt.Safely(func() (err error) { gflops, err = bench.MatmulGFLOPS(1024, 5); return err }); err != nil {
		r.problem("matmul through libtorch failed: %s", err)
	}
	blas := LoadedBLAS()
	malloc := rt.Malloc
	if arenas := torchrt.MallocArenas(); arenas > 0 {
		malloc += fmt.Sprintf("; %d arena(s) in use", arenas)
	}
	autoCPU, why := amp.Resolve(amp.Auto, gotch.CPU, amp.DetectCPU())
	r.Facts = []Fact{
		{"libtorch", fmt.Sprintf("%s (%s, lib %s)", b.Libtorch.Version, where, b.Libtorch.LibDir)},
		{"libtorch build", fmt.Sprintf("CUDA %v, CXX11 ABI %v", b.Libtorch.CUDA, b.Libtorch.CXX11ABI)},
		{"devices", devices},
		{"threads", fmt.Sprintf("%d intra-op (of %d CPUs)", torchrt.Threads(), runtime.NumCPU())},
		{"BLAS", blas},
		{"malloc", malloc},
		{"Go sysmon", rt.Sysmon},
		{"matmul 1024²", fmt.Sprintf("%.1f GFLOP/s (float32, CPU, best of 5)", gflops)},
		{"precision auto", fmt.Sprintf("%s for training on the CPU: %s", autoCPU, strings.TrimPrefix(why, "auto: "))},
		{"gotch", fmt.Sprintf("%s, prepared %s, %d wrappers stubbed (not available in this libtorch)", b.GotchVersion, b.PreparedAt, len(b.Stubbed))},
	}
	if strings.Contains(blas, "libblas.so") && !strings.Contains(blas, "openblas") {
		r.problem("reference BLAS is in use (about 15x slower): apt-get install libopenblas0-pthread")
	}
	return r, nil
}

func (r *Report) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// Write writes the report, one fact a line, then "PROBLEM: ..." lines or
// "ok".
func (r Report) Write(w io.Writer) {
	for _, f := range r.Facts {
		fmt.Fprintf(w, "%-16s%s\n", f.Name, f.Value)
	}
	for _, p := range r.Problems {
		fmt.Fprintln(w, "PROBLEM:", p)
	}
	if len(r.Problems) == 0 {
		fmt.Fprintln(w, "ok")
	}
}

// LoadedBLAS lists the BLAS libraries mapped into this process: with
// Debian's alternatives the path shows which implementation libtorch uses.
func LoadedBLAS() string {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	defer f.Close()
	return blasIn(f)
}

// blasIn is the BLAS libraries among the mappings of a /proc/PID/maps.
func blasIn(maps io.Reader) string {
	seen := map[string]bool{}
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			continue
		}
		path := fields[len(fields)-1]
		base := filepath.Base(path)
		if strings.Contains(base, "blas") || strings.Contains(base, "mkl_core") {
			if real, err := filepath.EvalSymlinks(path); err == nil {
				path = real
			}
			seen[path] = true
		}
	}
	if len(seen) == 0 {
		return "none loaded (libtorch uses its own kernels or MKL statically)"
	}
	paths := make([]string, 0, len(seen))
	for p := range seen {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return strings.Join(paths, ", ")
}
