# The commands users run. Every target creates .venv from requirements.txt when it is missing.
#
# Options take effect only when given on the command line (make align BIT=12): $(call option,NAME,default)
# ignores a variable of the same name in the user's shell (an OUT or DATA exported for another tool).
option = $(if $(filter command line,$(origin $(1))),$($(1)),$(2))
comma := ,

VENV := $(call option,VENV,.venv)
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed-requirements
# The GPU environment (docs/gpu.md): paddlepaddle-gpu 2.6.2 and numpy 1.26 from requirements-gpu.txt, no
# torch. `make gpu-env` creates it; `make train|eval|predict|export|infer|lite VENV=.venv-gpu` runs the
# Paddle side's commands in it; `make align-gpu` runs the suite with its Paddle side in it.
GPU_VENV := $(call option,GPU_VENV,.venv-gpu)
GPU_PYTHON := $(GPU_VENV)/bin/python
GPU_INSTALLED := $(GPU_VENV)/.installed-requirements
# Each environment is installed from its own pinned file.
IS_GPU_VENV = $(filter $(abspath $(GPU_VENV)),$(abspath $(VENV)))
REQUIREMENTS := $(if $(IS_GPU_VENV),requirements-gpu.txt,requirements.txt)

BIT := $(call option,BIT,48)
DTYPE := $(call option,DTYPE,float32$(comma)float64)
WEIGHTS := $(call option,WEIGHTS,)
DATA := $(call option,DATA,)
# MODEL: the model pair the suite aligns (alignment/pairs/: greedyhash, resnet18, resnet18-torch-bn); a pair
# other than greedyhash writes under logs/<MODEL> unless LOGS= is given
MODEL := $(call option,MODEL,greedyhash)
LOGS := $(call option,LOGS,$(if $(filter greedyhash,$(MODEL)),logs,logs/$(MODEL)))
SIZE := $(call option,SIZE,)
# SIZE (one size or a comma-separated list) is passed on only when given: the pair's default (224,222 for greedyhash)
ALIGN_SIZES = $(if $(SIZE),--sizes $(SIZE))
ALIGN = $(PYTHON) -m alignment --model $(MODEL) --bit $(BIT) $(ALIGN_SIZES) --dtypes $(DTYPE) --workdir $(LOGS) \
	$(if $(WEIGHTS),--weights $(WEIGHTS)) $(if $(DATA),--data $(DATA))

.PHONY: help venv align align-mutants align-mutants-reference align-curve test test-fast convert clean

help:
	@echo "Setup and tests"
	@echo "  make venv             create .venv from requirements.txt (every target does it when needed)"
	@echo "  make test-fast        the fast tier, for the edit loop (slow tests deselected)"
	@echo "  make test             every test, then test-gpu-env: what CI runs"
	@echo "Alignment (options: BIT=48 SIZE=224,222 DTYPE=float32,float64 WEIGHTS=model.pth|.pdparams DATA=cifar)"
	@echo "  make align            every step, weight set and size, in both precisions -> LOGS (default logs/)"
	@echo "  make align MODEL=resnet18   another model pair (alignment/pairs/: resnet18, resnet18-torch-bn) -> logs/MODEL"
	@echo "  make align-STEP       one step of the pair: align-forward, align-loss, align-backward, align-optim,"
	@echo "                        align-train; GreedyHash's own align-data, align-metric, align-inference"
	@echo "  make align-layers     where a difference starts, layer by layer (CASES=; make align runs it on a failure)"
	@echo "  make align-mutants    the mutation score: the checks against generated port defects (MAX=n OPERATORS=)"
	@echo "  make align-mutants-reference  regenerate logs/reference/mutants/ (the committed score)"
	@echo "  make align-curve      both frameworks train a few epochs; loss curves and final mAP (slow; SEEDS=, EPOCHS_CURVE=)"
	@echo "  make align-reference  regenerate logs/reference/ (the committed reference run)"
	@echo "  make align-curve-reference  regenerate logs/reference-curve/ (5 seeds; slow)"
	@echo "  make convert          DIRECTION=torch2paddle|paddle2torch SRC=model.pth DST=model.pdparams"
	@echo "Training product (FRAMEWORK=paddle|torch, BIT, SIZE, DATA; ARGS= passes further options)"
	@echo "  make train            PRETRAINED=backbone EPOCHS=n OUT=run folder"
	@echo "  make eval             CHECKPOINT= (default the run's best weights)"
	@echo "  make predict          INDEX=0 or IMAGE=file.png"
	@echo "  make export           the Paddle Inference model (OUT=)"
	@echo "  make infer            MODEL_DIR= IMAGE= or INDEX="
	@echo "  make reproduce        DATA=cifar-10-python.tar.gz PRETRAINED=backbone: the paper's table"
	@echo "  make lite             the quick chain: split, train, eval, export, infer, predict"
	@echo "GPU environment (.venv-gpu: paddlepaddle-gpu 2.6.2, numpy 1.26)"
	@echo "  make gpu-env          create .venv-gpu from requirements-gpu.txt (CUDA's libraries included)"
	@echo "  make align-gpu        the suite with its Paddle side in .venv-gpu, torch side in .venv (STEPS=)"
	@echo "  make gpu-check        forward and backward on the GPU (else the CPU) in both frameworks vs CPU float64"
	@echo "  make gpu-report       the first run on a GPU machine: one report -> logs/gpu-env/report (DEVICE=gpu)"
	@echo "  make gpu-env-tests    the tests that need .venv-gpu (where Paddle finds CUDA's libraries)"
	@echo "  make test-gpu-env     what CI runs in .venv-gpu: gpu-env, align-gpu (greedyhash, resnet18-torch-bn),"
	@echo "                        lite in .venv-gpu, gpu-report, gpu-env-tests"
	@echo "Speed and housekeeping"
	@echo "  make bench            both frameworks' speed side by side -> LOGS/bench.md (BENCH_ARGS=)"
	@echo "  make profile          where the training step's time goes, per operator -> LOGS/profile_*.txt"
	@echo "  make clean            remove what the targets wrote under LOGS (never the committed reference runs)"
	@echo "  make help             this list"
	@echo "Options are read from the command line only, never from the shell's environment."

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

# One step of the pair (alignment/steps/, and the pair's own): make align-forward, make align-metric, ...
# The rule is a pattern, so a new step needs no line here; the suite refuses a step the pair does not have.
align-%: $(INSTALLED)
	$(ALIGN) --steps $* --no-profile

# How much a pass proves: the suite's float64 checks against generated port defects (alignment/pairs/greedyhash/mutants/).
# MAX=n checks a seeded sample of n mutants, OPERATORS= only some operators; exits 1 below the committed
# score (logs/reference/mutants/) for the same settings.
MAX := $(call option,MAX,)
OPERATORS := $(call option,OPERATORS,)
ALIGN_MUTANTS = $(PYTHON) -m alignment.pairs.greedyhash.mutants --bit $(BIT) $(ALIGN_SIZES) $(if $(WEIGHTS),--weights $(WEIGHTS)) \
	$(if $(DATA),--data $(DATA)) $(if $(MAX),--max $(MAX)) $(if $(OPERATORS),--operators $(OPERATORS))
align-mutants: $(INSTALLED)
	$(ALIGN_MUTANTS) --workdir $(LOGS)/mutants

# The committed score: one run with every option at its default; only its two small files are kept
align-mutants-reference: $(INSTALLED)
	rm -rf $(LOGS)/mutants-reference-run $(REFERENCE)/mutants.new
	$(PYTHON) -m alignment.pairs.greedyhash.mutants --workdir $(LOGS)/mutants-reference-run --reference none
	mkdir -p $(REFERENCE)/mutants.new
	cp $(LOGS)/mutants-reference-run/mutation.json $(LOGS)/mutants-reference-run/mutation.md $(REFERENCE)/mutants.new/
	rm -rf $(REFERENCE)/mutants && mv $(REFERENCE)/mutants.new $(REFERENCE)/mutants

# CI (.ci/run) runs `make test`: every test in .venv, then the GPU environment's part (test-gpu-env).
# test-fast, the edit loop's tier, leaves out the tests marked slow (pyproject.toml says which are).
test: $(INSTALLED)
	$(PYTHON) -m pytest -q tests
	$(MAKE) --no-print-directory test-gpu-env

test-fast: $(INSTALLED)
	$(PYTHON) -m pytest -q -m "not slow" tests

DIRECTION := $(call option,DIRECTION,torch2paddle)
SRC := $(call option,SRC,)
DST := $(call option,DST,)
convert: $(INSTALLED)
	@test -n "$(SRC)" -a -n "$(DST)" || { echo "usage: make convert DIRECTION=torch2paddle|paddle2torch SRC=... DST=..."; exit 2; }
	$(PYTHON) -m weights_convert $(DIRECTION) $(SRC) $(DST) --model $(MODEL)

EPOCHS_CURVE := $(call option,EPOCHS_CURVE,)
SEEDS := $(call option,SEEDS,)
align-curve: $(INSTALLED)
	$(PYTHON) -m alignment.pairs.greedyhash.curve --workdir $(LOGS)/curve $(if $(EPOCHS_CURVE),--epochs $(EPOCHS_CURVE)) \
		$(if $(SEEDS),--seeds $(SEEDS)) $(if $(WEIGHTS),--weights $(WEIGHTS)) $(if $(DATA),--data $(DATA))

# What the targets write under LOGS, by target (the committed reference runs, logs/reference*/, are not
# among them); clean also removes what interrupted atomic writes left anywhere under LOGS
# (greedyhash_common/infra/atomic.py names them .tmp-*) and the built-in data's cache.
ALIGN_OUTPUTS = float32 float64 inputs coverage figures summary.json report.md report.json side_*.log layers_*.log
WRITTEN = $(ALIGN_OUTPUTS) curve reference-run curve-reference-run train predict-*.png export reproduce \
	reproduce.md lite bench.json bench.md bench-align.log bench-startup.log profile_*.txt gpu-env mutants mutants-reference-run
clean:
	rm -rf $(addprefix $(LOGS)/,$(WRITTEN)) $(REFERENCE)-curve.new $(REFERENCE)/mutants.new .cache
	if [ -d $(LOGS) ]; then find $(LOGS) -name '.tmp-*' -prune -exec rm -rf {} +; fi

# Layer-by-layer localization, and the committed reference run (logs/reference/: report and diff logs)
ALIGN_LAYERS = $(PYTHON) -m alignment.layers --model $(MODEL) --bit $(BIT) $(ALIGN_SIZES) --dtypes $(DTYPE) --workdir $(LOGS) \
	$(if $(WEIGHTS),--weights $(WEIGHTS)) $(if $(DATA),--data $(DATA)) $(if $(CASES),--cases $(CASES))
REFERENCE := $(call option,REFERENCE,logs/reference)
CASES := $(call option,CASES,)
REFERENCE_RUN = $(LOGS)/reference-run

.PHONY: align-layers align-reference align-curve-reference

align-layers: $(INSTALLED)
	$(ALIGN_LAYERS)

# The reference is one run of `make align` with every option at its default: CPU, seeded, built-in data
align-reference: $(INSTALLED)
	rm -rf $(REFERENCE_RUN)
	$(MAKE) --no-print-directory align LOGS=$(REFERENCE_RUN) BIT=48 DTYPE=float32,float64 WEIGHTS= DATA=
	$(PYTHON) -m alignment.report keep-reference $(REFERENCE_RUN) $(REFERENCE)

# The measurement behind the curve's tolerance (docs/alignment.md, "Loss curves"): five seeds at the
# defaults; the small files are kept (committed), not the run's weights
CURVE_REFERENCE_SEEDS = 2000,2001,2002,2003,2004
align-curve-reference: $(INSTALLED)
	rm -rf $(LOGS)/curve-reference-run $(REFERENCE)-curve.new
	$(PYTHON) -m alignment.pairs.greedyhash.curve --seeds $(CURVE_REFERENCE_SEEDS) --workdir $(LOGS)/curve-reference-run
	mkdir -p $(REFERENCE)-curve.new
	cp $(LOGS)/curve-reference-run/curve.* $(LOGS)/curve-reference-run/seed*.npy $(REFERENCE)-curve.new/
	rm -rf $(REFERENCE)-curve && mv $(REFERENCE)-curve.new $(REFERENCE)-curve

# ---------------------------------------------------------------------------------------------------
# Training product (see docs/training.md). FRAMEWORK=paddle|torch; SIZE, DATA and BIT as above.
# make train BIT=48 DATA=... PRETRAINED=...   make eval BIT=48   make predict INDEX=0 (or IMAGE=file.png)
# make export BIT=48   make infer IMAGE=file.png   make reproduce DATA=... PRETRAINED=...   make lite
FRAMEWORK := $(call option,FRAMEWORK,paddle)
PRETRAINED := $(call option,PRETRAINED,)
EPOCHS := $(call option,EPOCHS,)
OUT := $(call option,OUT,)
CHECKPOINT := $(call option,CHECKPOINT,)
IMAGE := $(call option,IMAGE,)
INDEX := $(call option,INDEX,0)
MODEL_DIR := $(call option,MODEL_DIR,)
ARGS := $(call option,ARGS,)
# SIZE is passed on only when given: otherwise the YAML config or the run decides.
SIZE_OPTION = $(if $(SIZE),--image-size $(SIZE))
DATA_OPTION = $(if $(DATA),--data $(DATA))
QUERY_OPTION = $(if $(IMAGE),--image $(IMAGE),--index $(INDEX))
# Where the product writes, under LOGS (the same names as the tools' own defaults under logs/)
RUN_DIR = $(LOGS)/train/$(FRAMEWORK)-bit$(BIT)
BEST_WEIGHTS = $(RUN_DIR)/best.$(if $(filter torch,$(FRAMEWORK)),pth,pdparams)
EXPORT_DIR = $(LOGS)/export/paddle-bit$(BIT)
CHECKPOINT_OPTIONS = --bit $(BIT) --checkpoint $(or $(CHECKPOINT),$(BEST_WEIGHTS)) $(SIZE_OPTION) $(DATA_OPTION)

.PHONY: train eval predict export infer reproduce lite

train: $(INSTALLED)
	$(PYTHON) -m $(FRAMEWORK)_impl.train --bit $(BIT) $(SIZE_OPTION) $(DATA_OPTION) \
		$(if $(PRETRAINED),--pretrained $(PRETRAINED)) $(if $(EPOCHS),--epochs $(EPOCHS)) \
		--output-dir $(or $(OUT),$(RUN_DIR)) $(ARGS)

eval: $(INSTALLED)
	$(PYTHON) -m $(FRAMEWORK)_impl.eval $(CHECKPOINT_OPTIONS) $(ARGS)

predict: $(INSTALLED)
	$(PYTHON) -m $(FRAMEWORK)_impl.predict $(CHECKPOINT_OPTIONS) $(QUERY_OPTION) \
		--output $(LOGS)/predict-$(FRAMEWORK).png $(ARGS)

export: $(INSTALLED)
	$(PYTHON) -m paddle_impl.export $(CHECKPOINT_OPTIONS) --output-dir $(or $(OUT),$(EXPORT_DIR)) $(ARGS)

infer: $(INSTALLED)
	$(PYTHON) -m paddle_impl.infer --model-dir $(or $(MODEL_DIR),$(EXPORT_DIR)) $(QUERY_OPTION) $(ARGS)

reproduce: $(INSTALLED)
	@test -n "$(DATA)" -a -n "$(PRETRAINED)" || { echo "usage: make reproduce DATA=cifar-10-python.tar.gz PRETRAINED=backbone (alexnet_backbone.pdparams for FRAMEWORK=paddle, alexnet-owt-7be5be79.pth for torch)"; exit 2; }
	$(PYTHON) -m tools.reproduce --framework $(FRAMEWORK) --data $(DATA) --pretrained $(PRETRAINED) \
		$(if $(EPOCHS),--epochs $(EPOCHS)) $(SIZE_OPTION) --runs-dir $(LOGS)/reproduce --report $(LOGS)/reproduce.md $(ARGS)

lite: $(INSTALLED)
	$(PYTHON) -m tools.lite_chain --workdir $(LOGS)/lite $(ARGS)

# ---------------------------------------------------------------------------------------------------
# Benchmark: torch and Paddle side by side on this machine, in one run (training step, inference, the
# evaluation pipeline, mAP, make align and its steps); writes $(LOGS)/bench.json and $(LOGS)/bench.md.
# make bench BENCH_ARGS="--skip-align"   (every option: python -m benchmarks --help)
BENCH_ARGS := $(call option,BENCH_ARGS,)

.PHONY: bench

bench: $(INSTALLED)
	$(PYTHON) -m benchmarks --output-dir $(LOGS) $(BENCH_ARGS)

# Each framework's own profiler on the training step, with each MKL code path -> $(LOGS)/profile_*.txt
.PHONY: profile
profile: $(INSTALLED)
	for framework in torch paddle; do for mkl in vendor avx2; do echo "profile: $$framework, MKL $$mkl"; \
		$(PYTHON) -m benchmarks.profile $$framework --mkl $$mkl --output $(LOGS)/profile_$${framework}_$$mkl.txt \
			> /dev/null || exit 1; done; done
	@echo "operator tables: $(LOGS)/profile_*.txt"

# ---------------------------------------------------------------------------------------------------
# The GPU environment (docs/gpu.md). On a machine without a GPU (CI, this project's machines) it runs on
# the CPU; with one, Paddle uses the GPU.
GPU_LOGS := $(call option,GPU_LOGS,$(LOGS)/gpu-env)
STEPS := $(call option,STEPS,)
# make align's command and options (the later --workdir wins), with the Paddle side in .venv-gpu
ALIGN_GPU = $(ALIGN) --workdir $(GPU_LOGS)/align --paddle-python $(GPU_PYTHON) $(if $(STEPS),--steps $(STEPS))

.PHONY: gpu-env align-gpu gpu-check gpu-report gpu-env-tests test-gpu-env

gpu-env: $(GPU_INSTALLED)
	$(GPU_PYTHON) -c "import numpy, paddle, numpy.random; print('paddle', paddle.__version__, 'numpy', numpy.__version__, \
		'CUDA build:', paddle.is_compiled_with_cuda(), 'GPUs:', paddle.device.cuda.device_count())"
	$(GPU_PYTHON) -m tools.gpu_libraries

align-gpu: $(INSTALLED) $(GPU_INSTALLED)
	$(ALIGN_GPU)

# Forward and backward, float32 and float64, on the GPU when there is one (else the CPU) in both
# frameworks, each compared with the CPU float64 reference (tools/gpu_check.py).
gpu-check: $(INSTALLED) $(GPU_INSTALLED)
	$(PYTHON) -m tools.gpu_check --paddle-python $(GPU_PYTHON) --workdir $(GPU_LOGS)/gpu-check --bit $(BIT) \
		$(if $(SIZE),--size $(SIZE)) $(if $(WEIGHTS),--weights $(WEIGHTS)) \
		$(if $(DATA),--data $(DATA))

# The first run on a GPU machine, one command: versions, CUDA libraries, gpu-check, determinism, throughput,
# an epoch, data parallel; what cannot run is listed as not run (tools/gpu_report.py). DEVICE=gpu: fail
# in one line when a framework sees no GPU.
DEVICE := $(call option,DEVICE,auto)
gpu-report: $(INSTALLED) $(GPU_INSTALLED)
	$(PYTHON) -m tools.gpu_report --paddle-python $(GPU_PYTHON) --workdir $(GPU_LOGS)/report --bit $(BIT) \
		--device $(DEVICE) $(if $(SIZE),--size $(SIZE)) $(if $(DATA),--data $(DATA))

# The tests that need .venv-gpu (tests/test_gpu_env.py: where Paddle finds CUDA's libraries)
gpu-env-tests: $(INSTALLED) $(GPU_INSTALLED)
	$(PYTHON) -m pytest -q tests/test_gpu_env.py -k in_the_gpu_environment

# What CI runs in the GPU environment, timed: install, the alignment suite (Paddle side in .venv-gpu),
# the quick training chain in .venv-gpu, gpu-report (gpu-check's CPU path, where Paddle finds CUDA's
# libraries), the tests that need .venv-gpu. A part that passes leaves its reports and logs but not
# its arrays and weights (their size: docs/gpu.md, What CI runs), so the disk holds one part's at a time.
DROP_ARRAYS = { test ! -d $(GPU_LOGS) || find $(GPU_LOGS) -type f \( -name '*.npy' -o -name '*.npz' -o -name '*.pdparams' -o -name '*.pdstate' \
	-o -name '*.pdiparams' -o -name '*.pth' \) -delete; }
test-gpu-env: $(INSTALLED)
	@started=$$(date +%s); \
	$(MAKE) --no-print-directory gpu-env && installed=$$(date +%s) && \
	$(MAKE) --no-print-directory align-gpu && aligned=$$(date +%s) && $(DROP_ARRAYS) && \
	$(MAKE) --no-print-directory align-gpu MODEL=resnet18-torch-bn GPU_LOGS=$(GPU_LOGS)/resnet18-torch-bn && \
	paired=$$(date +%s) && $(DROP_ARRAYS) && \
	$(MAKE) --no-print-directory lite VENV=$(GPU_VENV) LOGS=$(GPU_LOGS) && lite=$$(date +%s) && \
	$(DROP_ARRAYS) && $(MAKE) --no-print-directory gpu-report && reported=$$(date +%s) && $(DROP_ARRAYS) && \
	$(MAKE) --no-print-directory gpu-env-tests && finished=$$(date +%s) && \
	echo "GPU environment: install $$((installed - started)) s, align-gpu $$((aligned - installed)) s," \
		"align-gpu MODEL=resnet18-torch-bn $$((paired - aligned)) s, lite $$((lite - paired)) s," \
		"gpu-report $$((reported - lite)) s, its tests $$((finished - reported)) s"
