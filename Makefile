# Two commands set everything up on a fresh machine: `make train` and `make test`.
# Each creates .venv (CPU torch pinned first, so pip never pulls a CUDA build) when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: setup train test test-slow test-reference sweep robustness bench bench-reference bench-side-by-side gpu-check scaling lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

train: $(STAMP)
	$(PY) train.py $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -m slow $(ARGS)

# DeepInverse needs torchvision, which imports here only with torch 2.14.1 (a multi-GB
# install from the local disk), so the cross-checks live in their own environment.
REF_VENV  := .venv-reference
REF_STAMP := $(REF_VENV)/.installed

$(REF_STAMP): pyproject.toml
	test -x $(REF_VENV)/bin/python || $(PYTHON) -m venv $(REF_VENV)
	$(REF_VENV)/bin/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(REF_VENV)/bin/python -m pip install --quiet -e '.[dev,fastmri-masks]' 'deepinv==0.5.*' sigpy
	touch $(REF_STAMP)

test-reference: $(REF_STAMP)
	$(REF_VENV)/bin/python -m pytest -m reference tests/reference tests/test_masks.py $(ARGS)

# `make sweep`: twelve methods at the CPU budget on the noiseless setting. `make sweep SCENARIO=noisy`
# (noiseless, single, multicoil): the methods of that SSIBench scenario (conf/scenario/<name>.yaml
# lists them) at the CPU budget. PRESET=cpu_bench (32x32, 84 steps: the budget the stability rule
# chose, docs/results.md) by default; PRESET=cpu_quick runs the 64x64 one and
# PRESET=ssibench the benchmark's GPU protocol.
# SELECTION=val_loss|last|val_psnr picks the rule whose numbers head the table; every rule's
# pick is tested in the same runs (selection.test_all), so the table compares them side by side.
SCENARIO ?=
SELECTION ?= val_loss
PRESET ?= cpu_bench
ifeq ($(SCENARIO),)
SWEEP := experiment=$(PRESET) loss=sup,mc,ssdu,noise2inverse,weighted_ssdu,ei,diffeo_ei,moi,mo_ei,vortex,adversarial,uair
else
SWEEP = experiment=$(PRESET) scenario=$(SCENARIO) loss=$(shell $(PY) -c "from ssmri.report.leaderboard import scenario_methods; print(','.join(scenario_methods('$(SCENARIO)')))")
endif

# Two jobs at a time, one thread each: on 2 cores 1.12x the throughput of one job on both
# threads at the preset's length (docs/benchmark.md). LAUNCHER= runs them one after another.
LAUNCHER ?= hydra/launcher=local_parallel hydra.sweeper.max_batch_size=2
SWEEP_THREADS ?= $(if $(LAUNCHER),1,)

sweep: $(STAMP)
	$(if $(SWEEP_THREADS),OMP_NUM_THREADS=$(SWEEP_THREADS) )$(PY) train.py -m $(SWEEP) selection=$(SELECTION) $(LAUNCHER) $(ARGS)

# `make robustness SWEEP=<sweep dir>`: each job's selected checkpoint tested through eval.py at
# R = 2, 4, 6, 8, 12 and noise_std 0, 0.05, 0.1 under its own data and mask law, into <sweep>/robustness
# (robustness.md, .csv, .png); finished evaluations are reused. ARGS="--accelerations 2,8 --noise 0" narrows it.
# SWEEP above holds the sweep's overrides, so the folder must come from the command line.
robustness: $(STAMP)
	@test "$(origin SWEEP)" = "command line" || { echo "error: make robustness needs SWEEP=<sweep dir>, e.g. SWEEP=outputs/train/multirun/<date>" >&2; exit 2; }
	$(PY) -m ssmri.report.robustness $(SWEEP) $(ARGS)

# Ours, plus DeepInverse on the same work (in .venv-reference, its own torch) when that venv exists.
# On a GPU machine (a CUDA torch in .venv): 128x128 and 320x320, batches 1, 8, 32, bench/results-cuda-*.md.
bench: $(STAMP)
	$(PY) -m benchmarks $(ARGS)

# The whole benchmark inside .venv-reference: both sides on the same torch.
bench-reference: $(REF_STAMP)
	$(REF_VENV)/bin/python -m benchmarks $(ARGS)

# Ours and DeepInverse in one process, their steps in turn (bench/side-by-side.md): the throughput
# ratio without the machine's load at two different times in it.
bench-side-by-side: $(REF_STAMP)
	$(REF_VENV)/bin/python -m benchmarks.side_by_side $(ARGS)

# Every GPU path in under 8 minutes (bench/gpu-check.md); without a GPU it says so and exits 0.
gpu-check: $(STAMP)
	$(PY) -m benchmarks.gpu_check $(ARGS)

# How step time, memory and data loading grow with the image size, on this CPU (bench/scaling.md, .png).
scaling: $(STAMP)
	$(PY) -m benchmarks.scaling $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check ssmri tests benchmarks train.py eval.py predict.py
	$(PY) -m ruff format --check ssmri tests benchmarks train.py eval.py predict.py

clean:
	rm -rf outputs multirun wandb lightning_logs .pytest_cache .ruff_cache build *.egg-info
