// Command torchbuild prepares gotch for this machine's libtorch (see
// internal/torchbuild). Run it as `GOWORK=off go run ./cmd/torchbuild` from
// the repository root; `make setup` does.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"

	"github.com/robarch/robarch/internal/torchbuild"
)

func main() {
	install := flag.Bool("install", false, "install missing Debian packages with apt-get first")
	force := flag.Bool("force", false, "rebuild even if nothing changed")
	check := flag.Bool("check", false, "only report whether gotch is prepared for the libtorch found now (exit 1 if not)")
	repo := flag.String("repo", ".", "repository root (holds go.mod)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	libtorch := os.Getenv("LIBTORCH")
	if *check {
		b, err := torchbuild.Check(ctx, torchbuild.Options{RepoDir: *repo, Libtorch: libtorch})
		if err != nil {
			fmt.Fprintln(os.Stderr, "torchbuild:", err)
			os.Exit(1)
		}
		fmt.Printf("gotch %s is prepared for libtorch %s; %d wrappers stubbed\n", b.GotchVersion, b.Libtorch.Version, len(b.Stubbed))
		return
	}
	if *install {
		if err := torchbuild.InstallPackages(ctx, log, torchbuild.SystemPackages(libtorch != "")); err != nil {
			fmt.Fprintln(os.Stderr, "torchbuild: install packages:", err)
			os.Exit(1)
		}
	}
	res, err := torchbuild.Prepare(ctx, torchbuild.Options{RepoDir: *repo, Libtorch: libtorch, Force: *force, Log: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "torchbuild:", err)
		os.Exit(1)
	}
	b := res.Build
	dev := "CPU"
	if b.Libtorch.CUDA {
		dev = "CUDA"
	}
	state := "prepared"
	if res.Skipped {
		state = "up to date"
	}
	fmt.Printf("gotch %s %s for libtorch %s (%s, CXX11 ABI %v) in %s; %d wrappers stubbed\n",
		b.GotchVersion, state, b.Libtorch.Version, dev, b.Libtorch.CXX11ABI, res.Dir, len(b.Stubbed))
}
