# robarch: one entry point. `make run` runs the main job, `make test` the tests;
# both install what they need first (apt packages, the gotch build step).
SHELL := /bin/bash
export GOTCH_CACHE ?= $(CURDIR)/.build/gotch-cache
export GOFLAGS ?= -buildvcs=false
GO ?= go
ROBARCH := $(CURDIR)/.build/bin/robarch
OUT ?= out
# SEED_OFFSET=100 replicates the study with seeds disjoint from the default's.
SEED_OFFSET ?= 0

.PHONY: all setup build test test-short run bench lint doctor clean

all: test

## setup: install missing Debian packages and prepare gotch for this libtorch (idempotent)
setup:
	@mkdir -p $(GOTCH_CACHE)
	GOWORK=off $(GO) run ./cmd/torchbuild -install

## build: the robarch binary in .build/bin
build: setup
	$(GO) build -o $(ROBARCH) ./cmd/robarch

## test: vet and the whole test suite
test: setup
	$(GO) vet ./...
	$(GO) test -timeout 40m -count=1 ./...

## run: a small real sweep on Fashion-MNIST and its guidelines report (see README)
run: build
	$(ROBARCH) sweep --sweep fashion-mnist-micro --seed-offset $(SEED_OFFSET) --store $(OUT)/results.db --work $(OUT)/trials
	$(ROBARCH) guidelines report --store $(OUT)/results.db --out $(OUT)/report --split-seeds

## bench: Go benchmarks of the hot paths, then robarch bench against PyTorch
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...
	$(ROBARCH) bench --model micro --workload fgsm-rs,pgd10 --batch 128 --steps 20 --peer

## lint: gofmt and go vet
lint: setup
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

doctor: build
	$(ROBARCH) doctor

clean:
	rm -rf .build go.work go.work.sum
