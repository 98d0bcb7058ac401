# The commands users run. Every target creates .venv from requirements.txt when it is missing.
#
# Options take effect only when given on the command line (make align BIT=12): a plain `:=` below loses to
# the command line and wins over a variable of the same name in the user's shell (an OUT or DATA exported
# for another tool). They reach the programs exactly as typed, each as one argument: make never expands
# them (always $(value NAME): `make align MODEL='$(shell ...)'` is a model name, not a command), nor exports
# them (exporting would expand them), and the shell never parses them (each is one word, single-quoted when
# it holds anything the shell would read).
# A value with a line break is refused: make would cut the command there.
define newline


endef
$(foreach name,$(.VARIABLES),$(if $(filter command line,$(origin $(name))),\
	$(eval unexport $(name))$(if $(findstring $(newline),$(value $(name))),\
		$(error $(name): a value with a line break cannot be passed on as one argument))))
# $(call quoted,TEXT): TEXT as one shell word; $(call opt,NAME): option NAME's value as typed, one word;
# $(call given,--flag,NAME): --flag and the value, when NAME has one; $(call words_of,NAME): NAME split at
# spaces (by make, not the shell), each word one argument: what ARGS= and BENCH_ARGS= mean
SHELL_SPECIAL := $$ ' " \ ` ; & | < > ( ) { } [ ] * ? ~ ! ^ \#
quoted = $(if $(call plain_word,$(1)),$(1),'$(subst ','\'',$(1))')
plain_word = $(if $(1),$(if $(word 2,x$(1)x)$(strip $(foreach char,$(SHELL_SPECIAL),$(findstring $(char),$(1)))),,yes))
opt = $(call quoted,$(value $(1)))
given = $(if $(value $(2)),$(1) $(call opt,$(2)))
words_of = $(foreach part,$(value $(1)),$(call quoted,$(part)))

# The environments' folders are also make's own file names (INSTALLED): no spaces, $, % or : in them
VENV := .venv
GPU_VENV := .venv-gpu
$(foreach name,VENV GPU_VENV,$(if $(word 2,x$(value $(name))x)$(findstring $$,$(value $(name)))$(findstring %,$(value \
	$(name)))$(findstring :,$(value $(name))),$(error $(name)=$(value $(name)): a folder name without spaces, $$, % or :)))
PYTHON := $(call quoted,$(value VENV)/bin/python)
INSTALLED := $(value VENV)/.installed-requirements
# The GPU environment (docs/gpu.md): paddlepaddle-gpu 2.6.2 and numpy 1.26 from requirements-gpu.txt, no
# torch. `make gpu-env` creates it; `make train|eval|predict|export|infer|lite VENV=.venv-gpu` runs the
# Paddle side's commands in it; `make align-gpu` runs the suite with its Paddle side in it.
GPU_PYTHON := $(call quoted,$(value GPU_VENV)/bin/python)
GPU_INSTALLED := $(value GPU_VENV)/.installed-requirements
# Each environment is installed from its own pinned file.
IS_GPU_VENV = $(filter $(abspath $(value GPU_VENV)),$(abspath $(value VENV)))
REQUIREMENTS := $(if $(IS_GPU_VENV),requirements-gpu.txt,requirements.txt)

BIT := 48
DTYPE := float32,float64
WEIGHTS :=
DATA :=
# MODEL: the model pair the suite aligns (alignment/pairs/: greedyhash, resnet18, resnet18-torch-bn); a pair
# other than greedyhash writes under logs/<MODEL> unless LOGS= is given
MODEL := greedyhash
LOGS := $(if $(filter greedyhash,$(value MODEL)),logs,logs/$(value MODEL))
# $(call logs_path,NAME): LOGS/NAME, one shell word
logs_path = $(call quoted,$(value LOGS)/$(1))
SIZE :=
# WEIGHT_SETS (comma-separated, alignment/weight_sets.py) is passed on only when given: the pair's default sets
WEIGHT_SETS :=
ALIGN_WEIGHT_SETS = $(call given,--weight-sets,WEIGHT_SETS)
# SIZE (one size or a comma-separated list) is passed on only when given: the pair's default (224,222 for greedyhash)
ALIGN_SIZES = $(call given,--sizes,SIZE)
# BIT reaches the suite only when given: a pair without hash codes takes no --bit (GreedyHash's default: 48)
ALIGN_BIT = $(if $(filter command line,$(origin BIT)),--bit $(call opt,BIT))
ALIGN = $(PYTHON) -m alignment --model $(call opt,MODEL) $(ALIGN_BIT) $(ALIGN_SIZES) $(ALIGN_WEIGHT_SETS) \
	--dtypes $(call opt,DTYPE) --workdir $(call opt,LOGS) $(call given,--weights,WEIGHTS) $(call given,--data,DATA)

.PHONY: help venv align align-mutants align-mutants-reference align-curve test test-fast convert clean

help:
	@echo "Setup and tests"
	@echo "  make venv             create .venv from requirements.txt (every target does it when needed)"
	@echo "  make test-fast        the fast tier, for the edit loop (slow tests deselected)"
	@echo "  make test             every test, then test-gpu-env: what CI runs (both: TEST_WORKERS=2 processes)"
	@echo "Alignment (options: BIT=48 SIZE=224,222 DTYPE=float32,float64 WEIGHTS=model.pth|.pdparams DATA=cifar"
	@echo "           WEIGHT_SETS=seeded,rescaled: the pair's by default; rescaled proposed to any pair)"
	@echo "  make align            every step, weight set and size, in both precisions -> LOGS (default logs/)"
	@echo "  make align MODEL=resnet18   another model pair (alignment/pairs/: resnet18, resnet18-torch-bn) -> logs/MODEL"
	@echo "  make align-STEP       one step of the pair: align-forward, align-loss, align-backward, align-optim,"
	@echo "                        align-train; GreedyHash's own align-data, align-metric, align-inference"
	@echo "  make align-layers     where a difference starts, layer by layer (CASES=; make align runs it on a failure)"
	@echo "  make zoo              every family torchvision and paddle.vision both ship, one call each -> docs/zoo.md"
	@echo "  make planted-defects  what one call names for MobileNetV2's planted defects -> docs/planted_defects.md"
	@echo "  make align-mutants    the mutation score: the checks against generated port defects (MODEL= or TORCH= PADDLE=,"
	@echo "                        MAX=n OPERATORS= JOBS=)"
	@echo "  make align-mutants-reference  rerun a committed score with its settings (MODEL=<name>: logs/reference/mutants-<name>/)"
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
	@echo "  make bench-suite      the alignment suite's own cost: runs of 3 sizes, N times -> LOGS/suite_cost.md (BENCH_ARGS=)"
	@echo "  make profile          where the training step's time goes, per operator -> LOGS/profile_*.txt"
	@echo "  make clean            remove what the targets wrote under LOGS (never the committed reference runs)"
	@echo "  make help             this list"
	@echo "Options are read from the command line only, never from the shell's environment, and each is passed"
	@echo "on as one argument, exactly as typed; ARGS= and BENCH_ARGS= are split at spaces."

venv: $(INSTALLED)

# $(call install_venv,folder,requirements file)
define install_venv
	test -x $(call quoted,$(1)/bin/python) || python3 -m venv $(call quoted,$(1))
	$(call quoted,$(1)/bin/python) -m pip install --quiet --disable-pip-version-check -r $(2)
	touch $(call quoted,$(1)/.installed-requirements)
endef

$(INSTALLED): $(REQUIREMENTS)
	$(call install_venv,$(value VENV),$(REQUIREMENTS))

ifneq ($(abspath $(INSTALLED)),$(abspath $(GPU_INSTALLED)))
$(GPU_INSTALLED): requirements-gpu.txt
	$(call install_venv,$(value GPU_VENV),requirements-gpu.txt)
endif

align: $(INSTALLED)
	$(ALIGN)

# One step of the pair (alignment/steps/, and the pair's own): make align-forward, make align-metric, ...
# The rule is a pattern, so a new step needs no line here; the suite refuses a step the pair does not have.
align-%: $(INSTALLED)
	$(ALIGN) --steps $* --no-profile

# How much a pass proves: the suite's float64 checks against generated port defects (alignment/mutation/),
# for MODEL= (any pair; under LOGS/mutants) or TORCH= and PADDLE= (two model factories, MODULE:FACTORY; under
# logs/<torch factory>/mutants). MAX=n checks a seeded sample of n mutants, OPERATORS= only some operators,
# WEIGHT_SETS=seeded,rescaled adds the rescaled set the suite proposes to a pair without one
# (alignment/pairs/rescaling.py),
# JOBS= Paddle processes; exits 1 below the committed score (logs/reference/mutants/,
# logs/reference/mutants-<pair>/) for the same settings.
MAX :=
OPERATORS :=
JOBS := 2
TORCH :=
PADDLE :=
MUTANTS_PAIR = $(if $(value TORCH),--torch $(call opt,TORCH) --paddle $(call opt,PADDLE),--model $(call opt,MODEL))
ALIGN_MUTANTS = $(PYTHON) -m alignment.mutation $(MUTANTS_PAIR) --bit $(call opt,BIT) $(ALIGN_SIZES) \
	$(ALIGN_WEIGHT_SETS) $(call given,--weights,WEIGHTS) $(call given,--data,DATA) $(call given,--max,MAX) \
	$(call given,--operators,OPERATORS) --jobs $(call opt,JOBS)
align-mutants: $(INSTALLED)
	$(ALIGN_MUTANTS) $(if $(value TORCH),,--workdir $(call logs_path,mutants))

# A committed score rerun with the settings it records, and replaced: GreedyHash's (logs/reference/mutants/) or,
# with MODEL=<name>, logs/reference/mutants-<name>/ (a pair's sample CI's gate reruns, or a run kept for its figures)
align-mutants-reference: $(INSTALLED)
	$(PYTHON) -m alignment.mutation.reference --score $(call opt,MODEL) --workdir $(call logs_path,mutants-reference-run) \
		--jobs $(call opt,JOBS)

# CI (.ci/run) runs `make test`: every test in .venv, then the GPU environment's part (test-gpu-env).
# test-fast, the edit loop's tier, leaves out the tests marked slow (pyproject.toml says which are).
# Both run the tests in TEST_WORKERS processes (pytest-xdist), each test module whole in one of them, so
# that a module's fixtures are made once: a suite run's two sides keep two cores busy only part of its
# time, and the in-process tests use one.
TEST_WORKERS := 2
PYTEST = $(PYTHON) -m pytest -q -n $(call opt,TEST_WORKERS) --dist loadfile
test: $(INSTALLED)
	$(PYTEST) --durations=40 tests
	$(MAKE) --no-print-directory test-gpu-env

test-fast: $(INSTALLED)
	$(PYTEST) -m "not slow" tests

DIRECTION := torch2paddle
SRC :=
DST :=
convert: $(INSTALLED)
	@test -n $(call opt,SRC) -a -n $(call opt,DST) || { echo "usage: make convert DIRECTION=torch2paddle|paddle2torch SRC=... DST=..."; exit 2; }
	$(PYTHON) -m weights_convert $(call opt,DIRECTION) $(call opt,SRC) $(call opt,DST) --model $(call opt,MODEL)

EPOCHS_CURVE :=
SEEDS :=
align-curve: $(INSTALLED)
	$(PYTHON) -m alignment.pairs.greedyhash.curve --workdir $(call logs_path,curve) $(call given,--epochs,EPOCHS_CURVE) \
		$(call given,--seeds,SEEDS) $(call given,--weights,WEIGHTS) $(call given,--data,DATA)

# What the targets write directly in LOGS (the committed reference runs, logs/reference*/, are not among
# them), and in its train/ and export/ the run folders of `make train` and `make export` (a user's own
# files beside them stay), with what interrupted atomic writes left beside them (.tmp-*:
# greedyhash_common/infra/atomic.py), and the unfinished .new folders of the reference targets at their
# default REFERENCE. clean removes these names in LOGS, which must be one existing folder, and nothing
# outside it (the built-in data's cache, .cache/, stays: it is made again identically anyway).
ALIGN_OUTPUTS = float32 float64 inputs coverage figures summary.json report.md report.json side_*.log layers_*.log \
	run.lock
RUN_FOLDERS = $(foreach bit,[1-9][0-9],train/paddle-bit$(bit) train/torch-bit$(bit) export/paddle-bit$(bit))
WRITTEN = $(ALIGN_OUTPUTS) curve reference-run curve-reference-run predict-*.png reproduce reproduce.md lite \
	bench.json bench.md bench-align.log bench-startup.log suite_cost.json suite_cost.md suite_cost-*.log \
	profile_*.txt gpu-env mutants mutants-reference-run zoo \
	$(RUN_FOLDERS) .tmp-* train/.tmp-* export/.tmp-* reference-curve.new reference/mutants*.new
clean:
	@logs=$(call opt,LOGS); if [ -z "$$logs" ] || [ ! -d "$$logs" ]; then \
		echo "make clean: LOGS=$$logs is not an existing folder; nothing removed" >&2; exit 2; fi; \
	cd -- "$$logs" && rm -rf -- $(WRITTEN) && for folder in train export; do test ! -d $$folder || rmdir $$folder \
		2>/dev/null || echo "make clean: kept $$logs/$$folder: it holds files no target wrote"; done

# Layer-by-layer localization, and the committed reference run (logs/reference/: report and diff logs)
ALIGN_LAYERS = $(PYTHON) -m alignment.layers --model $(call opt,MODEL) $(ALIGN_BIT) $(ALIGN_SIZES) \
	--dtypes $(call opt,DTYPE) --workdir $(call opt,LOGS) $(call given,--weights,WEIGHTS) $(call given,--data,DATA) \
	$(call given,--cases,CASES)
REFERENCE := logs/reference
# $(call reference_path,SUFFIX): REFERENCE followed by SUFFIX, one shell word
reference_path = $(call quoted,$(value REFERENCE)$(1))
CASES :=
REFERENCE_RUN = $(call logs_path,reference-run)

.PHONY: align-layers align-reference align-curve-reference zoo planted-defects

align-layers: $(INSTALLED)
	$(ALIGN_LAYERS)

# The zoo (alignment/zoo.py): writes docs/zoo.json (the figures) and renders docs/zoo.md from it; runs under LOGS/zoo
zoo: $(INSTALLED)
	$(PYTHON) -m alignment.zoo --workdir $(call logs_path,zoo)

# What alignment.align names for each defect planted in MobileNetV2 (benchmarks/planted_defects.py), each failing
# key class's diagnosis line, ReLU6 coverage: writes docs/planted_defects.json and .md (its runs: a temporary folder)
planted-defects: $(INSTALLED)
	$(PYTHON) -m benchmarks.planted_defects

# The reference is one run of `make align` with every option at its default: CPU, seeded, built-in data
align-reference: $(INSTALLED)
	rm -rf $(REFERENCE_RUN)
	$(MAKE) --no-print-directory align LOGS=$(REFERENCE_RUN) BIT=48 DTYPE=float32,float64 WEIGHTS= DATA=
	$(PYTHON) -m alignment.report keep-reference $(REFERENCE_RUN) $(call opt,REFERENCE)

# The measurement behind the curve's tolerance (docs/alignment.md, "Loss curves"): five seeds at the
# defaults; the small files are kept (committed), not the run's weights
CURVE_REFERENCE_SEEDS = 2000,2001,2002,2003,2004
align-curve-reference: $(INSTALLED)
	rm -rf $(call logs_path,curve-reference-run) $(call reference_path,-curve.new)
	$(PYTHON) -m alignment.pairs.greedyhash.curve --seeds $(CURVE_REFERENCE_SEEDS) \
		--workdir $(call logs_path,curve-reference-run)
	mkdir -p $(call reference_path,-curve.new)
	cp $(call logs_path,curve-reference-run)/curve.* $(call logs_path,curve-reference-run)/seed*.npy \
		$(call reference_path,-curve.new/)
	rm -rf $(call reference_path,-curve) && mv $(call reference_path,-curve.new) $(call reference_path,-curve)

# ---------------------------------------------------------------------------------------------------
# Training product (see docs/training.md). FRAMEWORK=paddle|torch; SIZE, DATA and BIT as above.
# make train BIT=48 DATA=... PRETRAINED=...   make eval BIT=48   make predict INDEX=0 (or IMAGE=file.png)
# make export BIT=48   make infer IMAGE=file.png   make reproduce DATA=... PRETRAINED=...   make lite
FRAMEWORK := paddle
$(if $(filter-out paddle torch,$(value FRAMEWORK))$(filter-out 1,$(words $(value FRAMEWORK))),\
	$(error FRAMEWORK=$(value FRAMEWORK): paddle or torch))
PRETRAINED :=
EPOCHS :=
OUT :=
CHECKPOINT :=
IMAGE :=
INDEX := 0
MODEL_DIR :=
# ARGS: further options of the target's program, split at spaces (so no value in it can hold one)
ARGS :=
# SIZE is passed on only when given: otherwise the YAML config or the run decides.
SIZE_OPTION = $(call given,--image-size,SIZE)
DATA_OPTION = $(call given,--data,DATA)
QUERY_OPTION = $(if $(value IMAGE),--image $(call opt,IMAGE),--index $(call opt,INDEX))
# Where the product writes, under LOGS (the same names as the tools' own defaults under logs/)
RUN_DIR = $(call logs_path,train/$(value FRAMEWORK)-bit$(value BIT))
BEST_WEIGHTS = $(call logs_path,train/$(value FRAMEWORK)-bit$(value BIT)/best.$(if $(filter torch,$(value FRAMEWORK)),pth,pdparams))
EXPORT_DIR = $(call logs_path,export/paddle-bit$(value BIT))
CHECKPOINT_OPTIONS = --bit $(call opt,BIT) --checkpoint $(if $(value CHECKPOINT),$(call opt,CHECKPOINT),$(BEST_WEIGHTS)) \
	$(SIZE_OPTION) $(DATA_OPTION)

.PHONY: train eval predict export infer reproduce lite

train: $(INSTALLED)
	$(PYTHON) -m $(value FRAMEWORK)_impl.train --bit $(call opt,BIT) $(SIZE_OPTION) $(DATA_OPTION) \
		$(call given,--pretrained,PRETRAINED) $(call given,--epochs,EPOCHS) \
		--output-dir $(if $(value OUT),$(call opt,OUT),$(RUN_DIR)) $(call words_of,ARGS)

eval: $(INSTALLED)
	$(PYTHON) -m $(value FRAMEWORK)_impl.eval $(CHECKPOINT_OPTIONS) $(call words_of,ARGS)

predict: $(INSTALLED)
	$(PYTHON) -m $(value FRAMEWORK)_impl.predict $(CHECKPOINT_OPTIONS) $(QUERY_OPTION) \
		--output $(call logs_path,predict-$(value FRAMEWORK).png) $(call words_of,ARGS)

export: $(INSTALLED)
	$(PYTHON) -m paddle_impl.export $(CHECKPOINT_OPTIONS) --output-dir $(if $(value OUT),$(call opt,OUT),$(EXPORT_DIR)) \
		$(call words_of,ARGS)

infer: $(INSTALLED)
	$(PYTHON) -m paddle_impl.infer --model-dir $(if $(value MODEL_DIR),$(call opt,MODEL_DIR),$(EXPORT_DIR)) $(QUERY_OPTION) \
		$(call words_of,ARGS)

reproduce: $(INSTALLED)
	@test -n $(call opt,DATA) -a -n $(call opt,PRETRAINED) || { echo "usage: make reproduce DATA=cifar-10-python.tar.gz PRETRAINED=backbone (alexnet_backbone.pdparams for FRAMEWORK=paddle, alexnet-owt-7be5be79.pth for torch)"; exit 2; }
	$(PYTHON) -m tools.reproduce --framework $(value FRAMEWORK) --data $(call opt,DATA) --pretrained $(call opt,PRETRAINED) \
		$(call given,--epochs,EPOCHS) $(SIZE_OPTION) --runs-dir $(call logs_path,reproduce) \
		--report $(call logs_path,reproduce.md) $(call words_of,ARGS)

lite: $(INSTALLED)
	$(PYTHON) -m tools.lite_chain --workdir $(call logs_path,lite) $(call words_of,ARGS)

# ---------------------------------------------------------------------------------------------------
# Benchmark: torch and Paddle side by side on this machine, in one run (training step, inference, the
# evaluation pipeline, mAP, make align and its steps); writes $(LOGS)/bench.json and $(LOGS)/bench.md.
# make bench BENCH_ARGS="--skip-align"   (every option: python -m benchmarks --help)
BENCH_ARGS :=

.PHONY: bench

bench: $(INSTALLED)
	$(PYTHON) -m benchmarks --output-dir $(call opt,LOGS) $(call words_of,BENCH_ARGS)

# The alignment suite's own cost (benchmarks/suite_cost.py): make align, MODEL=resnet18 and ResNet-50 at 224 px
# float64, each run --repeats times in an empty workdir (wall, CPU, page faults, memory, disk, phases)
# -> $(LOGS)/suite_cost.json and .md (the committed ones: LOGS=logs/reference-bench). An older commit from
# the same command, beside it (a label measured again replaces its entry, the others stay):
#   git worktree add /tmp/before 1ba345e && make bench-suite BENCH_ARGS="--label before --checkout /tmp/before"
.PHONY: bench-suite
bench-suite: $(INSTALLED)
	$(PYTHON) -m benchmarks.suite_cost --output-dir $(call opt,LOGS) $(call words_of,BENCH_ARGS)

# Each framework's own profiler on the training step, with each MKL code path -> $(LOGS)/profile_*.txt
.PHONY: profile
profile: $(INSTALLED)
	for framework in torch paddle; do for mkl in vendor avx2; do echo "profile: $$framework, MKL $$mkl"; \
		$(PYTHON) -m benchmarks.profile $$framework --mkl $$mkl --output $(call logs_path,profile_)$${framework}_$$mkl.txt \
			> /dev/null || exit 1; done; done
	@echo "operator tables:" $(call logs_path,profile_*.txt)

# ---------------------------------------------------------------------------------------------------
# The GPU environment (docs/gpu.md). On a machine without a GPU (CI, this project's machines) it runs on
# the CPU; with one, Paddle uses the GPU.
GPU_LOGS := $(value LOGS)/gpu-env
gpu_logs_path = $(call quoted,$(value GPU_LOGS)/$(1))
STEPS :=
# make align's command and options (the later --workdir wins), with the Paddle side in .venv-gpu
ALIGN_GPU = $(ALIGN) --workdir $(call gpu_logs_path,align) --paddle-python $(GPU_PYTHON) $(call given,--steps,STEPS)

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
	$(PYTHON) -m tools.gpu_check --paddle-python $(GPU_PYTHON) --workdir $(call gpu_logs_path,gpu-check) \
		--bit $(call opt,BIT) $(call given,--size,SIZE) $(call given,--weights,WEIGHTS) $(call given,--data,DATA)

# The first run on a GPU machine, one command: versions, CUDA libraries, gpu-check, determinism, throughput,
# an epoch, data parallel; what cannot run is listed as not run (tools/gpu_report.py). DEVICE=gpu: fail
# in one line when a framework sees no GPU.
DEVICE := auto
gpu-report: $(INSTALLED) $(GPU_INSTALLED)
	$(PYTHON) -m tools.gpu_report --paddle-python $(GPU_PYTHON) --workdir $(call gpu_logs_path,report) \
		--bit $(call opt,BIT) --device $(call opt,DEVICE) $(call given,--size,SIZE) $(call given,--data,DATA)

# The tests that need .venv-gpu (tests/test_gpu_env.py: where Paddle finds CUDA's libraries)
gpu-env-tests: $(INSTALLED) $(GPU_INSTALLED)
	$(PYTHON) -m pytest -q tests/test_gpu_env.py -k in_the_gpu_environment

# What CI runs in the GPU environment, timed: install, the alignment suite (Paddle side in .venv-gpu),
# the quick training chain in .venv-gpu, gpu-report (gpu-check's CPU path, where Paddle finds CUDA's
# libraries), the tests that need .venv-gpu. A part that passes leaves its reports and logs but not
# its arrays and weights (their size: docs/gpu.md, What CI runs), so the disk holds one part's at a time.
DROP_ARRAYS = { test ! -d $(call opt,GPU_LOGS) || find $(call opt,GPU_LOGS) -type f \( -name '*.npy' -o -name '*.npz' -o -name '*.pdparams' -o -name '*.pdstate' \
	-o -name '*.pdiparams' -o -name '*.pth' \) -delete; }
test-gpu-env: $(INSTALLED)
	@started=$$(date +%s); \
	$(MAKE) --no-print-directory gpu-env && installed=$$(date +%s) && \
	$(MAKE) --no-print-directory align-gpu && aligned=$$(date +%s) && $(DROP_ARRAYS) && \
	$(MAKE) --no-print-directory align-gpu MODEL=resnet18-torch-bn GPU_LOGS=$(call gpu_logs_path,resnet18-torch-bn) && \
	paired=$$(date +%s) && $(DROP_ARRAYS) && \
	$(MAKE) --no-print-directory lite VENV=$(value GPU_VENV) LOGS=$(call opt,GPU_LOGS) && lite=$$(date +%s) && \
	$(DROP_ARRAYS) && $(MAKE) --no-print-directory gpu-report && reported=$$(date +%s) && $(DROP_ARRAYS) && \
	$(MAKE) --no-print-directory gpu-env-tests && finished=$$(date +%s) && \
	echo "GPU environment: install $$((installed - started)) s, align-gpu $$((aligned - installed)) s," \
		"align-gpu MODEL=resnet18-torch-bn $$((paired - aligned)) s, lite $$((lite - paired)) s," \
		"gpu-report $$((reported - lite)) s, its tests $$((finished - reported)) s"
