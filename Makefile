# Deep learning for NLP with Python: a thin wrapper over run.py, which does the same on Linux, macOS and Windows.
#   make tutorial   (= python3 run.py tutorial) set up (first time) and open the notebooks in JupyterLab
#   make test       (= python3 run.py test) set up (first time), run the unit tests and every notebook (nbval)
#   make check      (= python3 run.py check) the preflight: is this machine ready? (seconds)
# Extra arguments for the tool underneath: make test ARGS="-k data". Another venv: make setup VENV=/tmp/venv313.
# run.py sets KERAS_BACKEND=tensorflow, TF_CPP_MIN_LOG_LEVEL=2 and HF_HUB_OFFLINE=1 (unless
# already set) and writes them into the Jupyter kernel spec it installs.
PYTHON ?= python3
ifdef VENV
export DLNLP_VENV := $(VENV)
endif

TARGETS := setup tutorial run test unit prefetch bench check kernel check-html clean-venv

.PHONY: $(TARGETS)

$(TARGETS):
	$(PYTHON) run.py $@ $(ARGS)
