package amp

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/sugarme/gotch"
	"golang.org/x/sys/cpu"
)

// Hardware is what Resolve decides on.
type Hardware struct {
	// CPUBF16 is AVX512-BF16 or AMX-BF16 in cpuid (golang.org/x/sys/cpu
	// also checks that the OS saves the AVX-512 state).
	CPUBF16 bool
	CPUFlag string // which one, for the reason
	// CUDAMajor and CUDAMinor are the CUDA device's compute capability,
	// 0 when unknown.
	CUDAMajor, CUDAMinor int
}

// DetectCPU reads the CPU's bf16 support from cpuid, falling back to
// /proc/cpuinfo's flags (a hypervisor may hide cpuid leaves it reports).
func DetectCPU() Hardware {
	switch {
	case cpu.X86.HasAMXBF16:
		return Hardware{CPUBF16: true, CPUFlag: "amx_bf16"}
	case cpu.X86.HasAVX512BF16:
		return Hardware{CPUBF16: true, CPUFlag: "avx512_bf16"}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, f := range []string{"amx_bf16", "avx512_bf16"} {
			if HasCPUFlag(string(b), f) {
				return Hardware{CPUBF16: true, CPUFlag: f + " (/proc/cpuinfo)"}
			}
		}
	}
	return Hardware{}
}

// HasCPUFlag reports whether /proc/cpuinfo text lists flag.
func HasCPUFlag(cpuinfo, flag string) bool {
	for line := range strings.Lines(cpuinfo) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "flags" {
			for f := range strings.FieldsSeq(v) {
				if f == flag {
					return true
				}
			}
		}
	}
	return false
}

// DetectCUDA asks nvidia-smi for device index's compute capability
// (libtorch's C API that gotch wraps does not expose it); 0, 0 when it
// cannot tell.
func DetectCUDA(index int) (major, minor int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader", "-i", strconv.Itoa(index)).Output()
	if err != nil {
		return 0, 0
	}
	return parseCapability(string(out))
}

func parseCapability(s string) (major, minor int) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), ".")
	if !ok {
		return 0, 0
	}
	ma, err1 := strconv.Atoi(a)
	mi, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil {
		return 0, 0
	}
	return ma, mi
}

// Detect reads the hardware of device.
func Detect(device gotch.Device) Hardware {
	if isCUDA(device) {
		var h Hardware
		h.CUDAMajor, h.CUDAMinor = DetectCUDA(device.Value)
		return h
	}
	return DetectCPU()
}

// Resolve turns auto into the precision training uses on hardware h of
// device, with the reason; a concrete p comes back as it is. The choice
// rests on docs/precision.md: on this project's CPU (AVX512-BF16) bf16
// Fast-AT of micro on Fashion-MNIST, 5 seeds paired with fp32, trained
// 1.45x faster with PGD-20 accuracy unchanged (-0.08 points, 95% interval
// ±1.1) and clean accuracy 0.56 points lower. CPUs without bf16
// instructions emulate it, slower than fp32. On CUDA, compute capability
// 8.0 (Ampere) and later have bf16 tensor cores; older GPUs get fp32 (fp16
// stays opt-in: it needs the loss scaler). The CUDA rule is unmeasured.
func Resolve(p Precision, device gotch.Device, h Hardware) (Precision, string) {
	if p != Auto {
		return p, "as asked"
	}
	if isCUDA(device) {
		if h.CUDAMajor >= 8 {
			return BF16, fmt.Sprintf("auto: CUDA compute capability %d.%d >= 8.0 has bf16 tensor cores (unmeasured here)", h.CUDAMajor, h.CUDAMinor)
		}
		if h.CUDAMajor == 0 {
			return FP32, "auto: CUDA compute capability unknown (no nvidia-smi): fp32"
		}
		return FP32, fmt.Sprintf("auto: CUDA compute capability %d.%d < 8.0: fp32", h.CUDAMajor, h.CUDAMinor)
	}
	if h.CPUBF16 {
		return BF16, "auto: CPU has " + h.CPUFlag + "; bf16 training measured 1.45x faster with robust accuracy unchanged (docs/precision.md)"
	}
	return FP32, "auto: CPU has neither avx512_bf16 nor amx_bf16; bf16 would be emulated, " + emulatedCost
}

// emulatedCost is what bf16 without bf16 instructions was measured to cost
// (docs/precision.md, "A CPU without bf16 instructions").
const emulatedCost = "measured 24x slower than fp32 for micro on an AVX2 CPU, PyTorch alike"

// Emulated returns why p runs without hardware support on device with
// hardware h, or "" when it does not: bf16 on a CPU with neither
// avx512_bf16 nor amx_bf16 runs through slow fallback kernels. bf16 is
// still allowed there (a study trained in bf16 elsewhere can be extended
// exactly), so callers warn rather than refuse.
func Emulated(p Precision, device gotch.Device, h Hardware) string {
	if p != BF16 || isCUDA(device) || h.CPUBF16 {
		return ""
	}
	return "bf16 asked on a CPU with neither avx512_bf16 nor amx_bf16: it is emulated, " + emulatedCost + "; --precision auto picks fp32 here"
}

// ResolveForDevice is the one way a command turns a requested precision
// into the one it runs: auto becomes this device's choice (logged with
// why), the result is checked against the device, and a choice the
// hardware only emulates is warned about before any torch work.
func ResolveForDevice(p Precision, device gotch.Device) (Precision, error) {
	got, why := Resolve(p, device, Detect(device))
	if p == Auto {
		slog.Info("precision", "precision", got, "why", why)
	}
	if err := Check(got, device); err != nil {
		return "", err
	}
	WarnIfEmulated(got, device)
	return got, nil
}

// WarnIfEmulated logs that p has no hardware support on device and will
// run far slower than fp32. Only a CPU can lack it, so only the CPU is
// read (cpuid; no nvidia-smi call).
func WarnIfEmulated(p Precision, device gotch.Device) {
	if why := Emulated(p, device, DetectCPU()); why != "" {
		slog.Warn(why, "precision", p)
	}
}
