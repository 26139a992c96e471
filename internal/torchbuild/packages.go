package torchbuild

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
)

// Package is a Debian package the project needs, and why.
type Package struct {
	Name string
	Why  string
}

// SystemPackages are what `make setup` installs when missing. libtorch-dev
// is left out when the user brings their own libtorch.
func SystemPackages(ownLibtorch bool) []Package {
	var ps []Package
	if !ownLibtorch {
		ps = append(ps, Package{"libtorch-dev", "libtorch 1.13 headers and libraries"})
	}
	return append(ps,
		Package{"g++", "compiles gotch's C++ wrappers"},
		Package{"libopenblas0-pthread", "fast BLAS (reference BLAS is ~15x slower)"},
		Package{"dataset-fashion-mnist", "real images for make run and tests"},
		Package{"postgresql", "the team results store, tested for real"},
		Package{"chromium", "headless browser test of the HTML report"},
		Package{"python3-torch", "PyTorch on the same libtorch: interop tests and the benchmark peer"},
		Package{"python3-torchvision", "the benchmark peer's reference models and ImageFolder loader"},
		Package{"libgloo-dev", "gloo's headers for libtorch's c10d Gloo backend: data-parallel training"},
		Package{"libturbojpeg0-dev", "libjpeg-turbo's TurboJPEG API: JPEG decode with DCT-domain scaling for image folders"},
	)
}

// MissingPackages returns the packages dpkg does not report as installed.
func MissingPackages(ctx context.Context, ps []Package) []Package {
	var missing []Package
	for _, p := range ps {
		out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Status}", p.Name).Output()
		if err != nil || !strings.Contains(string(out), "install ok installed") {
			missing = append(missing, p)
		}
	}
	return missing
}

// InstallPackages installs the missing packages with apt-get, through sudo
// when not root. It does nothing when all are present.
func InstallPackages(ctx context.Context, log *slog.Logger, ps []Package) error {
	missing := MissingPackages(ctx, ps)
	if len(missing) == 0 {
		log.Info("system packages present", "count", len(ps))
		return nil
	}
	names := make([]string, len(missing))
	for i, p := range missing {
		names[i] = p.Name
		log.Info("will install", "package", p.Name, "why", p.Why)
	}
	run := func(args ...string) error {
		if os.Geteuid() != 0 {
			args = append([]string{"sudo", "-E"}, args...)
		}
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(args, " "), err)
		}
		return nil
	}
	if err := run("apt-get", "update", "-q"); err != nil {
		return err
	}
	return run(append([]string{"apt-get", "install", "-y", "-q", "--no-install-recommends"}, names...)...)
}
