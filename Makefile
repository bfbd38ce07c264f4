# radpipe: `make demo` runs the demo, `make test` runs the tests.
# Caches (reference-tool venvs, benchmark data) live under RADPIPE_CACHE.
RADPIPE_CACHE ?= $(HOME)/.cache/radpipe
VENV := $(RADPIPE_CACHE)/venv
BENCH_VENV := $(RADPIPE_CACHE)/bench-venv
CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
RADPIPE := $(TARGET_DIR)/debug/radpipe
# libtorch for the radpipe-nn worker: $LIBTORCH, else torch==2.11.0 from PyPI
# installed once into this venv (nn/libtorch.sh).
TORCH_VENV := $(RADPIPE_CACHE)/torch
# The S3-compatible server (moto) that the remote-cache tests start on loopback.
S3_VENV := $(RADPIPE_CACHE)/s3-venv
WITH_LIBTORCH = LIBTORCH="$$(sh nn/libtorch.sh $(TORCH_VENV))"

.PHONY: s3-venv build test clippy demo example schema venv fixtures nn-fixtures bench-venv bench bench-remote bench-slurm bench-scale bench-imaging bench-stats bench-synth bench-nn bench-determinism bench-learning bench-sweep bench-imaging-512 bench-register-512 gpu-carry clean-demo

# Both binaries: radpipe (never links libtorch) and the radpipe-nn worker.
# With the test targets: features are then resolved once for binaries and
# tests together (a dev-dependency, jsonschema, turns on regex features that
# Polars shares), so `make test` reuses this build instead of compiling Polars
# a second time.
build:
	$(WITH_LIBTORCH) $(CARGO) build --workspace --all-targets

# RADPIPE_REQUIRE_SERVICES: the tests that start a service (the S3 server,
# the one-host Slurm cluster of tests/services/slurm.sh)
# fail instead of skipping when it is missing.
test: build s3-venv
	RADPIPE_MOTO=$(S3_VENV)/bin/moto_server RADPIPE_REQUIRE_SERVICES=1 $(WITH_LIBTORCH) $(CARGO) test --workspace --no-fail-fast

s3-venv: $(S3_VENV)/.done
$(S3_VENV)/.done: tests/services/requirements-s3.txt
	python3 -m venv $(S3_VENV)
	$(S3_VENV)/bin/pip install -q -r tests/services/requirements-s3.txt
	touch $@

# Lints as CI runs them: every crate and target, warnings are errors.
clippy:
	$(WITH_LIBTORCH) $(CARGO) clippy --workspace --all-targets -- -D warnings

# The demo: synthetic `demo` cohorts (written once to data/demo), then the
# reference pipeline end to end (pipelines/demo.yaml) and the report. A second
# `make demo` is fully cached.
demo: build
	@test -f data/demo/design.txt || $(RADPIPE) synth --preset demo --out data/demo
	$(RADPIPE) run pipelines/demo.yaml
	@echo "report: results/report/index.html (tables also in results/report/tables/); lineage of a number: $(RADPIPE) lineage pipelines/demo.yaml table2/external/DLS/auc"

# The engine example: command stages over lists, globs and patients.
example: build
	cd examples/command-pipeline && $(abspath $(RADPIPE)) run pipeline.yaml
	cd examples/command-pipeline && $(abspath $(RADPIPE)) lineage pipeline.yaml out/summary.txt

# Regenerate schemas/pipeline.schema.json from the Rust types.
schema:
	RADPIPE_BLESS=1 $(CARGO) test --test schema

# Reference tools for fixtures (pinned); never needed to run radpipe.
venv: $(VENV)/.done
$(VENV)/.done: tests/fixtures/generate/requirements.txt tests/fixtures/generate/requirements-nodeps.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r tests/fixtures/generate/requirements.txt
	$(VENV)/bin/pip install -q --no-deps -r tests/fixtures/generate/requirements-nodeps.txt
	touch $@

fixtures: venv nn-fixtures
	for s in tests/fixtures/generate/*.py; do case $$s in *nn.py) ;; *) $(VENV)/bin/python $$s;; esac; done

# R references (tests/fixtures/stats/r_reference.json): R 4.2 with survival 3.5 and pROC 1.18
# (Debian 12: apt-get install r-base-core r-cran-survival r-cran-proc r-cran-jsonlite).
.PHONY: r-fixtures
r-fixtures:
	Rscript tests/fixtures/generate/reference.R

# PyTorch references for the worker (torch 2.11.0 + torchvision 0.26.0 in the libtorch venv).
nn-fixtures: build
	$(TORCH_VENV)/bin/pip install -q -r tests/fixtures/generate/requirements-nn.txt
	$(TORCH_VENV)/bin/python tests/fixtures/generate/nn.py --worker $(TARGET_DIR)/debug/radpipe-nn

bench-venv: $(BENCH_VENV)/.done
$(BENCH_VENV)/.done: benches/requirements.txt
	python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q -r benches/requirements.txt
	touch $@

bench: build bench-venv
	$(BENCH_VENV)/bin/python benches/noop_rerun.py --radpipe $(abspath $(RADPIPE)) --dvc $(BENCH_VENV)/bin/dvc

# The engine at cluster scale: the same pipeline for growing cohorts (3N+6
# nodes): first run, no-op run and status, time and peak memory. The first run
# of 10^5 patients takes about half an hour here.
SCALE_PATIENTS ?= 610 6100 30000 100000
bench-scale: build
	python3 benches/engine_scale.py --radpipe $(RADPIPE) --patients $(SCALE_PATIENTS)

# The Slurm executor against Snakemake's slurm plugin on a one-host Slurm
# (tests/services/slurm.sh; needs Debian's slurmctld, slurmd, slurm-client, munge).
SLURM_BENCH_VENV := $(RADPIPE_CACHE)/snakemake-venv
BENCH_PATIENTS ?= 610
# Seconds after which each Snakemake run is stopped and measured as it stands (unset: to its end).
SNAKEMAKE_BUDGET ?=
bench-slurm: build
	test -f $(SLURM_BENCH_VENV)/.done || { python3 -m venv $(SLURM_BENCH_VENV) && $(SLURM_BENCH_VENV)/bin/pip install -q -r benches/requirements-slurm.txt && touch $(SLURM_BENCH_VENV)/.done; }
	python3 benches/slurm_bench.py --radpipe $(RADPIPE) --snakemake $(SLURM_BENCH_VENV)/bin/snakemake --patients $(BENCH_PATIENTS) $(if $(SNAKEMAKE_BUDGET),--snakemake-budget $(SNAKEMAKE_BUDGET))

# The shared cache against a local S3 server: restore the engine benchmark's
# 1836 nodes from the remote into a fresh workspace (time, requests, bytes).
bench-remote: build s3-venv
	$(S3_VENV)/bin/python benches/remote_cache.py --radpipe $(RADPIPE) --moto $(S3_VENV)/bin/moto_server

bench-imaging: venv
	bash benches/imaging.sh $(VENV)/bin/python

# Clinical-size B-spline resampling vs SimpleITK (512x512x24 @0.43x0.43x5.5 mm), peak RSS.
bench-imaging-512: build venv
	$(VENV)/bin/python benches/resample_512.py --radpipe $(RADPIPE)

# Rigid registration of a clinical-size pair vs SimpleITK's standard recipe, with TRE.
bench-register-512: build venv
	$(VENV)/bin/python benches/register_512.py --radpipe $(RADPIPE)

bench-stats: venv
	bash benches/stats.sh $(VENV)/bin/python

# Generation time of the synthetic presets (paper takes minutes).
bench-synth:
	$(CARGO) run -q --example synth_time -- tiny demo paper

# A 3-seed sweep of the demo against three clean runs of it (issue 13).
bench-sweep: build
	bash benches/sweep.sh $(RADPIPE) /tmp/radpipe-sweep-bench

# Does the DLS learn? The demo pipeline's DLS on internal + external validation
# patients, and the same with permuted training labels (after `make demo`).
bench-learning: build
	python3 benches/learning.py --radpipe $(RADPIPE) --pipeline pipelines/demo.yaml --data data/demo

# What benches/gpu_check.sh needs on a GPU machine without Rust or network:
# stripped binaries and torchvision wheels (the reference), in gpu-carry/.
gpu-carry: build
	mkdir -p gpu-carry
	strip -o gpu-carry/radpipe $(RADPIPE) && strip -o gpu-carry/radpipe-nn $(TARGET_DIR)/debug/radpipe-nn
	for v in 310 311 312; do $(TORCH_VENV)/bin/pip download -q torchvision==0.26.0 --no-deps --python-version $$v --only-binary=:all: -d gpu-carry; done

# Backbone throughput against PyTorch eager (CPU, 2 threads, ResNet-101 at 224x224).
bench-nn: build
	$(TORCH_VENV)/bin/pip install -q -r tests/fixtures/generate/requirements-nn.txt
	$(TORCH_VENV)/bin/python benches/nn_bench.py --worker $(TARGET_DIR)/debug/radpipe-nn --threads 2

# The cost of deterministic mode: backbone images/s on and off (CPU, 2 threads;
# ResNet-18 at 64x64, ResNet-101 at 224x224), a Markdown table.
bench-determinism: build
	bash benches/determinism.sh $(TARGET_DIR)/debug/radpipe-nn

clean-demo:
	rm -rf data/demo results .radpipe
	cd examples/command-pipeline && rm -rf out results .radpipe
