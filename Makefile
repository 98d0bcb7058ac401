# The commands users run. Every target creates .venv from requirements.txt when it is missing.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed-requirements
# The GPU environment (docs/gpu.md): paddlepaddle-gpu 2.6.2 and numpy 1.26 from requirements-gpu.txt, no
# torch. `make gpu-env` creates it; `make train|eval|predict|export|infer|lite VENV=.venv-gpu` runs the
# Paddle side's commands in it; `make align-gpu` runs the suite with its Paddle side in it.
GPU_VENV ?= .venv-gpu
GPU_PYTHON := $(GPU_VENV)/bin/python
GPU_INSTALLED := $(GPU_VENV)/.installed-requirements
# Each environment is installed from its own pinned file.
IS_GPU_VENV = $(filter $(abspath $(GPU_VENV)),$(abspath $(VENV)))
REQUIREMENTS ?= $(if $(IS_GPU_VENV),requirements-gpu.txt,requirements.txt)

BIT ?= 48
DTYPE ?= float32,float64
WEIGHTS ?=
DATA ?=
LOGS ?= logs
# SIZE (one size or a comma-separated list) is passed on only when given: the suite's default is 224,222
ALIGN_SIZES = $(if $(filter command line,$(origin SIZE)),--sizes $(SIZE))
ALIGN = $(PYTHON) -m alignment --bit $(BIT) $(ALIGN_SIZES) --dtypes $(DTYPE) --workdir $(LOGS) \
	$(if $(WEIGHTS),--weights $(WEIGHTS)) $(if $(DATA),--data $(DATA))

.PHONY: help venv align align-curve align-data align-forward align-loss align-backward align-optim align-train align-metric \
	align-inference test convert clean

help:
	@echo "make align            every alignment step, weight set and size, float32 and float64 (BIT=48 SIZE=224,222"
	@echo "                      DTYPE=float32,float64)"
	@echo "make align-forward    one step: align-data, -forward, -loss, -backward, -optim, -train, -metric, -inference"
	@echo "make align-layers     where a difference starts, layer by layer (also run by make align on a failure)"
	@echo "make align-curve      both frameworks train a few epochs; loss curves and final mAP (slow)"
	@echo "make align-reference  regenerate logs/reference/ (the committed reference run)"
	@echo "make align-curve-reference  regenerate logs/reference-curve/ (5 seeds; time: docs/alignment.md)"
	@echo "make test             the test suite, then test-gpu-env"
	@echo "make gpu-env          create .venv-gpu from requirements-gpu.txt (paddlepaddle-gpu 2.6.2, numpy 1.26)"
	@echo "make align-gpu        the suite with its Paddle side in .venv-gpu, torch side in .venv (STEPS=, DTYPE=...)"
	@echo "make gpu-check        forward and backward on the GPU (else the CPU) in both frameworks vs CPU float64"
	@echo "make test-gpu-env     what CI runs in .venv-gpu: gpu-env, align-gpu, lite in .venv-gpu, gpu-check"
	@echo "make bench            both frameworks' speed side by side -> logs/bench.md"
	@echo "make profile          where the training step's time goes, per operator -> logs/profile_*.txt"
	@echo "make train|eval|predict|export|infer|reproduce|lite   the training product (docs/training.md)"
	@echo "make convert DIRECTION=torch2paddle SRC=model.pth DST=model.pdparams"
	@echo "options: WEIGHTS=checkpoint (.pth/.pdparams, default seeded init)  DATA=CIFAR-10 path (default built-in)"

venv: $(INSTALLED)

# $(call install_venv,folder,requirements file)
define install_venv
	test -x $(1)/bin/python || python3 -m venv $(1)
	$(1)/bin/python -m pip install --quiet --disable-pip-version-check -r $(2)
	touch $(1)/.installed-requirements
endef

$(INSTALLED): $(REQUIREMENTS)
	$(call install_venv,$(VENV),$(REQUIREMENTS))

ifneq ($(abspath $(INSTALLED)),$(abspath $(GPU_INSTALLED)))
$(GPU_INSTALLED): requirements-gpu.txt
	$(call install_venv,$(GPU_VENV),requirements-gpu.txt)
endif

align: $(INSTALLED)
	$(ALIGN)

align-data align-forward align-loss align-backward align-optim align-train align-metric align-inference: align-%: $(INSTALLED)
	$(ALIGN) --steps $*

# CI (.ci/run) runs `make test`: the tests in .venv, then the GPU environment's part (test-gpu-env).
test: $(INSTALLED)
	$(PYTHON) -m pytest -q tests
	$(MAKE) --no-print-directory test-gpu-env

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
	rm -rf $(LOGS)/float32 $(LOGS)/float64 $(LOGS)/inputs $(LOGS)/coverage $(LOGS)/figures $(LOGS)/curve $(LOGS)/*.log \
		$(LOGS)/summary.json $(LOGS)/report.md $(LOGS)/report.json .cache
	if [ -d $(LOGS) ]; then find $(LOGS) -name '.tmp-*' -prune -exec rm -rf {} +; fi

# Layer-by-layer localization, and the committed reference run (logs/reference/: report and diff logs)
ALIGN_LAYERS = $(PYTHON) -m alignment.layers --bit $(BIT) $(ALIGN_SIZES) --dtypes $(DTYPE) --workdir $(LOGS) \
	$(if $(WEIGHTS),--weights $(WEIGHTS)) $(if $(DATA),--data $(DATA)) $(if $(CASES),--cases $(CASES))
REFERENCE ?= logs/reference
REFERENCE_RUN = $(LOGS)/reference-run

.PHONY: align-layers align-reference align-curve-reference

align-layers: $(INSTALLED)
	$(ALIGN_LAYERS)

# The reference is one run of `make align` with every option at its default: CPU, seeded, built-in data
align-reference: $(INSTALLED)
	rm -rf $(REFERENCE_RUN)
	$(MAKE) --no-print-directory align LOGS=$(REFERENCE_RUN) BIT=48 DTYPE=float32,float64 WEIGHTS= DATA=
	$(PYTHON) -m alignment.report keep-reference $(REFERENCE_RUN) $(REFERENCE)

# The measurement behind the curve's tolerance (docs/alignment.md, "Loss curves"): five seeds at the defaults; the
# small files are kept (committed), not the run's weights
CURVE_REFERENCE_SEEDS = 2000,2001,2002,2003,2004
align-curve-reference: $(INSTALLED)
	rm -rf $(LOGS)/curve-reference-run $(REFERENCE)-curve.new
	$(PYTHON) -m alignment.curve --seeds $(CURVE_REFERENCE_SEEDS) --workdir $(LOGS)/curve-reference-run
	mkdir -p $(REFERENCE)-curve.new
	cp $(LOGS)/curve-reference-run/curve.* $(LOGS)/curve-reference-run/seed*.npy $(REFERENCE)-curve.new/
	rm -rf $(REFERENCE)-curve && mv $(REFERENCE)-curve.new $(REFERENCE)-curve

# ---------------------------------------------------------------------------------------------------
# Training product (see docs/training.md). FRAMEWORK=paddle|torch; SIZE, DATA and BIT as above.
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

# ---------------------------------------------------------------------------------------------------
# The GPU environment (docs/gpu.md). On a machine without a GPU (CI, this project's machines) it runs on
# the CPU; with one, Paddle uses the GPU.
GPU_LOGS ?= $(LOGS)/gpu-env
STEPS ?=
# make align's command and options (the later --workdir wins), with the Paddle side in .venv-gpu
ALIGN_GPU = $(ALIGN) --workdir $(GPU_LOGS)/align --paddle-python $(GPU_PYTHON) $(if $(STEPS),--steps $(STEPS))

.PHONY: gpu-env align-gpu gpu-check test-gpu-env

gpu-env: $(GPU_INSTALLED)
	$(GPU_PYTHON) -c "import numpy, paddle, numpy.random; print('paddle', paddle.__version__, 'numpy', numpy.__version__, \
		'CUDA build:', paddle.is_compiled_with_cuda(), 'GPUs:', paddle.device.cuda.device_count())"

align-gpu: $(INSTALLED) $(GPU_INSTALLED)
	$(ALIGN_GPU)

# Forward and backward, float32 and float64, on the GPU when there is one (else the CPU) in both
# frameworks, each compared with the CPU float64 reference (tools/gpu_check.py).
gpu-check: $(INSTALLED) $(GPU_INSTALLED)
	$(PYTHON) -m tools.gpu_check --paddle-python $(GPU_PYTHON) --workdir $(GPU_LOGS)/gpu-check --bit $(BIT) \
		$(if $(filter command line,$(origin SIZE)),--size $(SIZE)) $(if $(WEIGHTS),--weights $(WEIGHTS)) \
		$(if $(DATA),--data $(DATA))

# What CI runs in the GPU environment, timed: install, the alignment suite (Paddle side in .venv-gpu),
# the quick training chain in .venv-gpu, gpu-check. A part that passes leaves its reports and logs but not
# its arrays and weights (their size: docs/gpu.md, What CI runs), so the disk holds one part's at a time.
DROP_ARRAYS = { test ! -d $(GPU_LOGS) || find $(GPU_LOGS) -type f \( -name '*.npy' -o -name '*.pdparams' -o -name '*.pdstate' \
	-o -name '*.pdiparams' -o -name '*.pth' \) -delete; }
test-gpu-env: $(INSTALLED)
	@started=$$(date +%s); \
	$(MAKE) --no-print-directory gpu-env && installed=$$(date +%s) && \
	$(MAKE) --no-print-directory align-gpu && aligned=$$(date +%s) && $(DROP_ARRAYS) && \
	$(MAKE) --no-print-directory lite VENV=$(GPU_VENV) ARGS="--workdir $(GPU_LOGS)/lite" && lite=$$(date +%s) && \
	$(DROP_ARRAYS) && $(MAKE) --no-print-directory gpu-check && finished=$$(date +%s) && $(DROP_ARRAYS) && \
	echo "GPU environment: install $$((installed - started)) s, align-gpu $$((aligned - installed)) s," \
		"lite $$((lite - aligned)) s, gpu-check $$((finished - lite)) s"
