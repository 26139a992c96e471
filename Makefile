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

.PHONY: all setup build test test-short run findings bench gpu-check lint doctor clean fuzz

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

## fuzz: every fuzz target of a reader of outside input, FUZZTIME each
## (docs/reliability.md); a crash stops it and leaves the input in the
## package's testdata/fuzz, which `make test` then replays. Go 1.26's fuzz
## coordinator can end a run with "context deadline exceeded" and no
## crasher on a busy machine (golang/go#75804, fixed in Go 1.27): such a
## run is reported as a flake, not a failure; any run that writes a
## crasher fails.
FUZZTIME ?= 60s
FUZZ_TARGETS := ./data:FuzzReadIDX ./data:FuzzReadCIFAR ./data:FuzzImageFolder \
	./arch/model:FuzzReadSafetensors ./arch/model:FuzzReadPyTorch ./arch:FuzzParse \
	./sweep:FuzzLoadFile ./sweep/store:FuzzDecode
fuzz: setup
	@set -eo pipefail; flakes=0; log=$$(mktemp); for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; dir=$$pkg/testdata/fuzz/$$name; echo "== $$name in $$pkg for $(FUZZTIME)"; \
	  before=$$( (ls $$dir 2>/dev/null || true) | wc -l); rc=0; \
	  $(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg 2>&1 | tee $$log || rc=$$?; \
	  after=$$( (ls $$dir 2>/dev/null || true) | wc -l); \
	  if [ $$rc -ne 0 ]; then \
	    if [ $$after -eq $$before ] && grep -q 'context deadline exceeded' $$log; then \
	      echo "== $$name: flake, no crasher written (golang/go#75804)"; flakes=$$((flakes+1)); \
	    else echo "== $$name: FAILED, input in $$dir"; rm -f $$log; exit 1; fi; \
	  fi; \
	done; rm -f $$log; echo "== fuzz: all targets clean ($$flakes coordinator flakes)"

## run: a small real sweep on Fashion-MNIST and its guidelines report (see README)
run: build
	$(ROBARCH) sweep --sweep fashion-mnist-micro --seed-offset $(SEED_OFFSET) --store $(OUT)/results.db --work $(OUT)/trials
	$(ROBARCH) guidelines report --store $(OUT)/results.db --out $(OUT)/report --split-seeds

## findings: the findings study (every RobArch guideline testable at 28x28,
## docs/findings.md) and its report; SEED_OFFSET=100 replicates it
FINDINGS_OUT ?= $(OUT)/findings-$(SEED_OFFSET)
findings: build
	$(ROBARCH) sweep --sweep fashion-mnist-findings --seed-offset $(SEED_OFFSET) --store $(FINDINGS_OUT)/results.db --work $(FINDINGS_OUT)/trials
	$(ROBARCH) guidelines report --store $(FINDINGS_OUT)/results.db --out $(FINDINGS_OUT)/report

## bench: Go benchmarks of the hot paths, then robarch bench against PyTorch
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...
	$(ROBARCH) bench --model micro --workload fgsm-rs,pgd10 --batch 128 --steps 20 --peer

## gpu-check: on a machine with a GPU, one command: prepare gotch against a
## CUDA libtorch (LIBTORCH= the torch folder of a CUDA PyTorch, whose Python
## is PYTHON), run the CUDA-only tests (they skip elsewhere) and robarch bench
## on CUDA against that PyTorch in fp32, bf16 and fp16. Never needed by CI.
PYTHON ?= python3
gpu-check:
	@test -n "$(LIBTORCH)" || { echo "gpu-check: set LIBTORCH to a CUDA libtorch, e.g. LIBTORCH=\$$($(PYTHON) -c 'import torch,os;print(os.path.dirname(torch.__file__))')"; exit 2; }
	@mkdir -p $(GOTCH_CACHE)
	GOWORK=off LIBTORCH=$(LIBTORCH) $(GO) run ./cmd/torchbuild
	$(GO) build -o $(ROBARCH) ./cmd/robarch
	$(ROBARCH) doctor
	$(GO) test -count=1 -v -run 'CUDA' ./internal/amp ./train
	for p in fp32 bf16 fp16; do \
	  $(ROBARCH) bench --device cuda --model resnet18-cifar --workload train,fgsm-rs,pgd10,infer --batch 128 --steps 20 --rss-steps 0 \
	    --precision $$p --peer --python $(PYTHON) --peer-precision $$p --peer-memory-format contiguous || exit 1; \
	done

## lint: gofmt, go vet, and the pure packages (internal/purity's list)
## build without cgo and import no gotch
lint: setup
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -count=1 -run TestPurePackagesNeedNoCgo ./internal/purity

doctor: build
	$(ROBARCH) doctor

clean:
	rm -rf .build go.work go.work.sum
