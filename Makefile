# Deep learning for NLP with Python: set-up, tutorial, tests.
#   make tutorial   set up (first time) and open the notebooks in JupyterLab
#   make test       set up (first time) and run the whole test suite (unit tests + every notebook)
#   make run        set up and execute every notebook in order, headless, into build/
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# gensim's Word2Vec and FastText are reproducible only with a fixed hash seed, set before Python starts.
export PYTHONHASHSEED ?= 0
export KERAS_BACKEND ?= tensorflow
export TF_CPP_MIN_LOG_LEVEL ?= 2
export HF_HUB_OFFLINE ?= 1

NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))

.PHONY: setup tutorial run test unit prefetch bench check-html clean-venv

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (dl-nlp)"
	@touch $@

tutorial: setup
	$(BIN)/jupyter lab notebooks/

run: setup
	@mkdir -p build
	@for nb in $(NOTEBOOKS); do \
	  echo "== $$nb"; \
	  $(BIN)/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=-1 \
	    --output-dir build "$$nb" || exit 1; \
	  $(BIN)/jupyter nbconvert --to html --output-dir build "build/$$(basename $$nb)" || exit 1; \
	done

test: setup
	$(BIN)/python -m pytest tests $(NOTEBOOKS) --nbval-lax --nbval-cell-timeout=1800 -p no:cacheprovider

unit: setup
	$(BIN)/python -m pytest tests

prefetch: setup
	$(BIN)/python -m helpers prefetch

bench: setup
	$(BIN)/python scripts/bench.py

# Needs Chromium (apt-get install chromium); run after `make run`.
check-html: setup
	$(BIN)/python -m pip install -q -r requirements-browser.txt
	$(BIN)/python scripts/check_html.py $(wildcard build/*.html)

clean-venv:
	rm -rf $(VENV)
