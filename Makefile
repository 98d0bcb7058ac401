# The commands users run. Every target creates .venv from requirements.txt when it is missing.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed-requirements

BIT ?= 48
SIZE ?= 224
DTYPE ?= float32,float64
WEIGHTS ?=
DATA ?=
LOGS ?= logs
ALIGN = $(PYTHON) -m alignment --bit $(BIT) --size $(SIZE) --dtypes $(DTYPE) --workdir $(LOGS) \
	$(if $(WEIGHTS),--weights $(WEIGHTS)) $(if $(DATA),--data $(DATA))

.PHONY: help venv align align-curve align-data align-forward align-loss align-backward align-optim align-train align-metric test convert clean

help:
	@echo "make align            every alignment step, float32 and float64 (BIT=48 SIZE=224 DTYPE=float32,float64)"
	@echo "make align-forward    one step: align-data, -forward, -loss, -backward, -optim, -train, -metric"
	@echo "make align-layers     where a difference starts, layer by layer (also run by make align on a failure)"
	@echo "make align-curve      both frameworks train a few epochs; loss curves and final mAP (slow)"
	@echo "make align-reference  regenerate logs/reference/ (the committed reference run)"
	@echo "make align-curve-reference  regenerate logs/reference-curve/ (5 seeds; about 35 minutes)"
	@echo "make test             the test suite"
	@echo "make bench            both frameworks' speed side by side -> logs/bench.md"
	@echo "make profile          where the training step's time goes, per operator -> logs/profile_*.txt"
	@echo "make train|eval|predict|export|infer|reproduce|lite   the training product (README, Training)"
	@echo "make convert DIRECTION=torch2paddle SRC=model.pth DST=model.pdparams"
	@echo "options: WEIGHTS=checkpoint (.pth/.pdparams, default seeded init)  DATA=CIFAR-10 path (default built-in)"

venv: $(INSTALLED)

$(INSTALLED): requirements.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

align: $(INSTALLED)
	$(ALIGN)

align-data align-forward align-loss align-backward align-optim align-train align-metric: align-%: $(INSTALLED)
	$(ALIGN) --steps $*

test: $(INSTALLED)
	$(PYTHON) -m pytest -q tests

DIRECTION ?= torch2paddle
convert: $(INSTALLED)
	@test -n "$(SRC)" -a -n "$(DST)" || { echo "usage: make convert DIRECTION=torch2paddle|paddle2torch SRC=... DST=..."; exit 2; }
	$(PYTHON) -m weights_convert $(DIRECTION) $(SRC) $(DST)

align-curve: $(INSTALLED)
	$(PYTHON) -m alignment.curve --workdir $(LOGS)/curve $(if $(EPOCHS_CURVE),--epochs $(EPOCHS_CURVE)) \
		$(if $(SEEDS),--seeds $(SEEDS)) $(if $(WEIGHTS),--weights $(WEIGHTS)) $(if $(DATA),--data $(DATA))

# clean also removes what interrupted atomic writes left anywhere under logs/ (greedyhash_common/atomic.py
# names them .tmp-*)
clean:
	rm -rf $(LOGS)/float32 $(LOGS)/float64 $(LOGS)/inputs $(LOGS)/curve $(LOGS)/*.log $(LOGS)/summary.json \
		$(LOGS)/report.md $(LOGS)/report.json .cache
	if [ -d $(LOGS) ]; then find $(LOGS) -name '.tmp-*' -prune -exec rm -rf {} +; fi

# Layer-by-layer localization, and the committed reference run (logs/reference/: report and diff logs)
ALIGN_LAYERS = $(PYTHON) -m alignment.layers --bit $(BIT) --size $(SIZE) --dtypes $(DTYPE) --workdir $(LOGS) \
	$(if $(WEIGHTS),--weights $(WEIGHTS)) $(if $(DATA),--data $(DATA))
REFERENCE ?= logs/reference
REFERENCE_RUN = $(LOGS)/reference-run

.PHONY: align-layers align-reference align-curve-reference

align-layers: $(INSTALLED)
	$(ALIGN_LAYERS)

# The reference is one run of `make align` with every option at its default: CPU, seeded, built-in data
align-reference: $(INSTALLED)
	rm -rf $(REFERENCE_RUN)
	$(MAKE) --no-print-directory align LOGS=$(REFERENCE_RUN) BIT=48 SIZE=224 DTYPE=float32,float64 WEIGHTS= DATA=
	$(PYTHON) -m alignment.report keep-reference $(REFERENCE_RUN) $(REFERENCE)

# The measurement behind the curve's tolerance (README, "Loss curves"): five seeds at the defaults; the
# small files are kept (committed), not the run's weights
CURVE_REFERENCE_SEEDS = 2000,2001,2002,2003,2004
align-curve-reference: $(INSTALLED)
	rm -rf $(LOGS)/curve-reference-run $(REFERENCE)-curve.new
	$(PYTHON) -m alignment.curve --seeds $(CURVE_REFERENCE_SEEDS) --workdir $(LOGS)/curve-reference-run
	mkdir -p $(REFERENCE)-curve.new
	cp $(LOGS)/curve-reference-run/curve.* $(LOGS)/curve-reference-run/seed*.npy $(REFERENCE)-curve.new/
	rm -rf $(REFERENCE)-curve && mv $(REFERENCE)-curve.new $(REFERENCE)-curve

# ---------------------------------------------------------------------------------------------------
# Training product (see README, "Training"). FRAMEWORK=paddle|torch; SIZE, DATA and BIT as above.
# make train BIT=48 DATA=... PRETRAINED=...   make eval BIT=48   make predict INDEX=0 (or IMAGE=file.png)
# make export BIT=48   make infer IMAGE=file.png   make reproduce DATA=... PRETRAINED=...   make lite
FRAMEWORK ?= paddle
PRETRAINED ?=
EPOCHS ?=
OUT ?=
CHECKPOINT ?=
IMAGE ?=
INDEX ?= 0
MODEL_DIR ?=
ARGS ?=
# SIZE is passed on only when given on the command line: otherwise the YAML config or the run decides.
SIZE_OPTION = $(if $(filter command line,$(origin SIZE)),--image-size $(SIZE))
DATA_OPTION = $(if $(DATA),--data $(DATA))
QUERY_OPTION = $(if $(IMAGE),--image $(IMAGE),--index $(INDEX))
CHECKPOINT_OPTIONS = --bit $(BIT) $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT)) $(SIZE_OPTION) $(DATA_OPTION)

.PHONY: train eval predict export infer reproduce lite

train: $(INSTALLED)
	$(PYTHON) -m $(FRAMEWORK)_impl.train --bit $(BIT) $(SIZE_OPTION) $(DATA_OPTION) \
		$(if $(PRETRAINED),--pretrained $(PRETRAINED)) $(if $(EPOCHS),--epochs $(EPOCHS)) \
		$(if $(OUT),--output-dir $(OUT)) $(ARGS)

eval: $(INSTALLED)
	$(PYTHON) -m $(FRAMEWORK)_impl.eval $(CHECKPOINT_OPTIONS) $(ARGS)

predict: $(INSTALLED)
	$(PYTHON) -m $(FRAMEWORK)_impl.predict $(CHECKPOINT_OPTIONS) $(QUERY_OPTION) $(ARGS)

export: $(INSTALLED)
	$(PYTHON) -m paddle_impl.export $(CHECKPOINT_OPTIONS) $(if $(OUT),--output-dir $(OUT)) $(ARGS)

infer: $(INSTALLED)
	$(PYTHON) -m paddle_impl.infer --model-dir $(or $(MODEL_DIR),logs/export/paddle-bit$(BIT)) $(QUERY_OPTION) $(ARGS)

reproduce: $(INSTALLED)
	@test -n "$(DATA)" -a -n "$(PRETRAINED)" || { echo "usage: make reproduce DATA=cifar-10-python.tar.gz PRETRAINED=backbone (alexnet_backbone.pdparams for FRAMEWORK=paddle, alexnet-owt-7be5be79.pth for torch)"; exit 2; }
	$(PYTHON) -m tools.reproduce --framework $(FRAMEWORK) --data $(DATA) --pretrained $(PRETRAINED) \
		$(if $(EPOCHS),--epochs $(EPOCHS)) $(SIZE_OPTION) $(ARGS)

lite: $(INSTALLED)
	$(PYTHON) -m tools.lite_chain $(ARGS)

# ---------------------------------------------------------------------------------------------------
# Benchmark: torch and Paddle side by side on this machine, in one run (training step, inference, the
# evaluation pipeline, mAP, make align and its steps); writes $(LOGS)/bench.json and $(LOGS)/bench.md.
# make bench BENCH_ARGS="--skip-align"   (every option: python -m benchmarks --help)
BENCH_ARGS ?=

.PHONY: bench

bench: $(INSTALLED)
	$(PYTHON) -m benchmarks --output-dir $(LOGS) $(BENCH_ARGS)

# Each framework's own profiler on the training step, with each MKL code path -> $(LOGS)/profile_*.txt
.PHONY: profile
profile: $(INSTALLED)
	for framework in torch paddle; do for mkl in vendor avx2; do \
		$(PYTHON) -m benchmarks.profile $$framework --mkl $$mkl --output $(LOGS)/profile_$${framework}_$$mkl.txt \
			> /dev/null || exit 1; done; done
	@echo "operator tables: $(LOGS)/profile_*.txt"
