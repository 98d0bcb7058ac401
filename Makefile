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

.PHONY: help venv align align-forward align-loss align-backward test convert clean

help:
	@echo "make align            every alignment step, float32 and float64 (BIT=48 SIZE=224 DTYPE=float32,float64)"
	@echo "make align-forward    one step: align-forward, align-loss, align-backward"
	@echo "make test             the test suite"
	@echo "make convert DIRECTION=torch2paddle SRC=model.pth DST=model.pdparams"
	@echo "options: WEIGHTS=checkpoint (.pth/.pdparams, default seeded init)  DATA=CIFAR-10 path (default built-in)"

venv: $(INSTALLED)

$(INSTALLED): requirements.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

align: $(INSTALLED)
	$(ALIGN)

align-forward align-loss align-backward: align-%: $(INSTALLED)
	$(ALIGN) --steps $*

test: $(INSTALLED)
	$(PYTHON) -m pytest -q tests

DIRECTION ?= torch2paddle
convert: $(INSTALLED)
	@test -n "$(SRC)" -a -n "$(DST)" || { echo "usage: make convert DIRECTION=torch2paddle|paddle2torch SRC=... DST=..."; exit 2; }
	$(PYTHON) -m weights_convert $(DIRECTION) $(SRC) $(DST)

clean:
	rm -rf $(LOGS)/float32 $(LOGS)/float64 $(LOGS)/inputs $(LOGS)/*.log $(LOGS)/summary.json .cache
