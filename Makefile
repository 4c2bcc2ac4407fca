# fer-mgln: raw FER datasets -> aligned face/part crops in a verified shard cache -> MGLN training.
# Every target that needs the tools depends on `setup`; variables below can be set on the command line.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# --- tool environment (so that plain `make prep|train|test` work without sourcing anything) ---
# torch-sys finds libtorch through the .venv's python (LIBTORCH_USE_PYTORCH), so .venv/bin goes
# first on PATH. No $(wildcard) of .venv paths here: GNU make answers those from a directory cache
# taken before the `setup` recipe creates .venv, so the first run would never see them. Nor an
# LD_LIBRARY_PATH: the binaries and tests carry libtorch's directory as RUNPATH (crates/train/build.rs).
VENV        := $(CURDIR)/.venv
export LIBTORCH_USE_PYTORCH := 1
export PATH := $(VENV)/bin:$(PATH)
# Real-data tests and benchmarks find ../shared through this variable; absent -> they say "skipped".
export FER_SHARED ?= $(abspath $(CURDIR)/../shared)

CARGO       ?= cargo
PREP        := target/release/prep
TRAIN       := target/release/train

# --- what to prep / train ---
DATASET     ?= demo
SOURCE      ?= data/raw/$(DATASET)
CACHE_DIR   ?= data/cache
CONFIG      ?= manifests/experiments/demo.toml
PREP_ARGS   ?=
TRAIN_ARGS  ?=
RUN         ?=
RUNS        ?=
INPUTS      ?=
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?=

.PHONY: help setup build demo prep train sweep resume report export-onnx predict env test test-real test-learning test-slurm bench bench-video bench-criterion lint fuzz fuzz-seeds clean-cache

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

setup: ## install model packages and libtorch (idempotent)
	@./scripts/setup.sh

build: setup ## release build of prep, train, tests and benches (one feature set, so `make test` reuses it)
	$(CARGO) build --release --workspace --all-targets

demo: build ## synthetic demo data -> caches -> a small k-fold training run (CPU or GPU)
	./scripts/demo.sh

prep: build ## build a cache: make prep DATASET=ckplus SOURCE=data/raw/ckplus CACHE_DIR=data/cache
	$(PREP) build --dataset $(DATASET) --source $(SOURCE) --cache-dir $(CACHE_DIR) $(PREP_ARGS)

train: build ## run an experiment: make train CONFIG=manifests/experiments/ckplus-mgln.toml
	$(TRAIN) run --config $(CONFIG) $(TRAIN_ARGS)

resume: build ## continue an interrupted run: make resume RUN=runs/<experiment>/<run>
	@test -n "$(RUN)" || { echo "usage: make resume RUN=runs/<experiment>/<run>"; exit 2; }
	$(TRAIN) run --resume $(RUN) $(TRAIN_ARGS)

sweep: CONFIG = manifests/experiments/demo-ablation.toml
sweep: build ## an ablation sweep (grid × seeds × folds, resumable): make sweep CONFIG=manifests/experiments/ckplus-ablation.toml
	$(TRAIN) sweep --config $(CONFIG) $(TRAIN_ARGS)

report: build ## compare runs: make report RUNS="runs/a/<run> runs/b/<run>"
	@test -n "$(RUNS)" || { echo "usage: make report RUNS=\"runs/a/<run> runs/b/<run>\""; exit 2; }
	$(TRAIN) report $(RUNS) $(TRAIN_ARGS)

export-onnx: build ## a trained run as PyTorch + ONNX model directories: make export-onnx RUN=runs/<experiment>/<run> [FOLD=0] [OUT=dir]
	@test -n "$(RUN)" || { echo "usage: make export-onnx RUN=runs/<experiment>/<run> [FOLD=K] [OUT=DIR]"; exit 2; }
	$(TRAIN) export $(RUN) $(if $(FOLD),--fold $(FOLD)) --out $(or $(OUT),$(RUN)/export)$(if $(FOLD),/fold-$(FOLD)) $(TRAIN_ARGS)
	@for m in $$(find $(or $(OUT),$(RUN)/export)$(if $(FOLD),/fold-$(FOLD)) -name model.json); do \
	  .venv/bin/python -m fer_shard.onnx export $$(dirname $$m) || exit 1; done

predict: build ## classify images or frame folders: make predict RUN=runs/<experiment>/<run> INPUTS="a.png seq/"
	@test -n "$(RUN)" -a -n "$(INPUTS)" || { echo "usage: make predict RUN=runs/<experiment>/<run> INPUTS=\"a.png seq/\""; exit 2; }
	$(TRAIN) predict --run $(RUN) $(INPUTS) $(TRAIN_ARGS)

env: build ## what libtorch sees (CUDA, cuDNN, threads) and which face paths run (SIMD)
	$(TRAIN) env

test: setup ## all tests (release build; real-data tests print "skipped" without ../shared), parity again with SIMD off
	$(CARGO) test --release --workspace
	@echo "test: the dlib / OpenCV parity tests again with every vector path off (FER_SIMD=off)"
	FER_SIMD=off $(CARGO) test --release --workspace --lib --test face

test-real: setup ## the tests that use ../shared (parity with dlib/OpenCV, real datasets)
	@if [ -d "$(FER_SHARED)" ]; then echo "test-real: using FER_SHARED=$(FER_SHARED)"; \
	  elif [ -n "$$FER_REQUIRE_SHARED" ]; then echo "test-real: FAILED: $(FER_SHARED) not found (FER_REQUIRE_SHARED is set)"; exit 1; \
	  else echo "test-real: skipped: $(FER_SHARED) not found"; exit 0; fi; \
	FER_REQUIRE_SHARED=1 $(CARGO) test --release --workspace real_

test-slurm: build ## the shipped Slurm scripts on a real one-node Slurm started here (slurm-wlm + munge; root): prep array + merge, sweep array + report, scancel, requeue, time limit
	FER_REQUIRE_SLURM=1 $(CARGO) test --release --workspace --test e2e slurm:: -- --ignored --nocapture

test-learning: build ## the learning tests under 5 seeds x every CPU kernel set libtorch offers here, then their worst margins
	./scripts/test_learning.sh

bench: build ## the speed figures in one table: goal, previous version (BENCH_BASE), now, dlib/OpenCV reference
	FER_SHARED=$(FER_SHARED) ./scripts/bench.sh

bench-video: build ## train predict on a 640x480 video, frames/s on 1 and 2 cores beside ffmpeg decoding alone
	./scripts/bench_video.sh

bench-criterion: setup ## criterion micro-benchmarks of the shard and face crates, release build
	$(CARGO) bench --workspace

lint: setup ## rustfmt check, clippy with warnings as errors (missing docs included), every relative link in the docs
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --release -- -D warnings
	$(CARGO) test --release --workspace --test e2e docs::

fuzz: ## fuzz every reader FUZZ_SECONDS each (default 600; cargo-fuzz, needs nightly), then a table
	./scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-seeds: setup ## regenerate the committed fuzz seeds in fuzz/corpus from their generator
	$(CARGO) test --release --workspace --test e2e fuzz_replay::write_fuzz_seeds -- --ignored

clean-cache: ## delete built caches under CACHE_DIR (raw data is kept)
	rm -rf $(CACHE_DIR)
