package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
	"github.com/sugarme/gotch"

	"github.com/robarch/robarch/bench"
	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/torchbuild"
	"github.com/robarch/robarch/internal/torchrt"
)

func newDoctorCmd(v *viper.Viper) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check libtorch, the gotch build, devices, threads and BLAS",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDoctor(cmd.OutOrStdout(), v.GetInt("threads"))
		},
	}
}

func runDoctor(w io.Writer, threads int) error {
	var problems []string
	b, err := torchrt.Build()
	if err != nil {
		return fmt.Errorf("%w; run `make setup`", err)
	}
	lt, lerr := torchbuild.Locate(os.Getenv("LIBTORCH"))
	switch {
	case lerr != nil:
		problems = append(problems, fmt.Sprintf("libtorch not found now (%v): install libtorch-dev or set LIBTORCH, then run `make setup`", lerr))
	case lt.Version != b.Libtorch.Version || lt.LibDir != b.Libtorch.LibDir || lt.CUDA != b.Libtorch.CUDA:
		problems = append(problems, fmt.Sprintf("gotch was prepared for libtorch %s in %s but libtorch %s in %s is found now: run `make setup`",
			b.Libtorch.Version, b.Libtorch.LibDir, lt.Version, lt.LibDir))
	}
	if _, err := os.Stat(filepath.Join(b.Libtorch.LibDir, "libtorch.so")); err != nil {
		problems = append(problems, fmt.Sprintf("the linked libtorch is gone (%v): run `make setup`", err))
	}

	rt := torchrt.Init(threads)
	malloc := rt.Malloc
	where := "system install"
	if b.Libtorch.Root != "" {
		where = b.Libtorch.Root
	}
	cuda := torchrt.CUDADevices()
	devices := "cpu"
	if cuda > 0 {
		devices = fmt.Sprintf("cpu, %d CUDA device(s)", cuda)
	} else if b.Libtorch.CUDA {
		problems = append(problems, "libtorch has CUDA but no CUDA device is visible (driver, CUDA_VISIBLE_DEVICES?)")
	}
	// The same ceiling robarch bench reports (the best of 5 products).
	var gflops float64
	err = torchrt.Safely(func() (err error) {
		gflops, err = bench.MatmulGFLOPS(1024, 5)
		return err
	})
	if err != nil {
		problems = append(problems, "matmul through libtorch failed: "+err.Error())
	}
	blas := loadedBLAS()
	if arenas := torchrt.MallocArenas(); arenas > 0 {
		malloc += fmt.Sprintf("; %d arena(s) in use", arenas)
	}

	fmt.Fprintf(w, "libtorch        %s (%s, lib %s)\n", b.Libtorch.Version, where, b.Libtorch.LibDir)
	fmt.Fprintf(w, "libtorch build  CUDA %v, CXX11 ABI %v\n", b.Libtorch.CUDA, b.Libtorch.CXX11ABI)
	fmt.Fprintf(w, "devices         %s\n", devices)
	fmt.Fprintf(w, "threads         %d intra-op (of %d CPUs)\n", torchrt.Threads(), runtime.NumCPU())
	fmt.Fprintf(w, "BLAS            %s\n", blas)
	fmt.Fprintf(w, "malloc          %s\n", malloc)
	fmt.Fprintf(w, "Go sysmon       %s\n", rt.Sysmon)
	fmt.Fprintf(w, "matmul 1024²    %.1f GFLOP/s (float32, CPU, best of 5)\n", gflops)
	autoCPU, why := amp.Resolve(amp.Auto, gotch.CPU, amp.DetectCPU())
	fmt.Fprintf(w, "precision auto  %s for training on the CPU: %s\n", autoCPU, strings.TrimPrefix(why, "auto: "))
	fmt.Fprintf(w, "gotch           %s, prepared %s, %d wrappers stubbed (not available in this libtorch)\n", b.GotchVersion, b.PreparedAt, len(b.Stubbed))
	if strings.Contains(blas, "libblas.so") && !strings.Contains(blas, "openblas") {
		problems = append(problems, "reference BLAS is in use (about 15x slower): apt-get install libopenblas0-pthread")
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(w, "PROBLEM:", p)
		}
		return errors.Join(errSilent)
	}
	fmt.Fprintln(w, "ok")
	return nil
}

// loadedBLAS lists the BLAS libraries mapped into this process: with
// Debian's alternatives the path shows which implementation libtorch uses.
func loadedBLAS() string {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
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
