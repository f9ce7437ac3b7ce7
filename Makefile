# beamstream: `make demo` and `make test` work on a fresh machine with only Python 3.11.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
DEMO_ARGS ?=
TEST_ARGS ?=

.PHONY: demo test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# reinstall only when the package metadata changed; the demo needs the runtime dependencies only
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP) $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(PY) -m beamstream demo $(DEMO_ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(TEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check beamstream tests benchmarks
	$(VENV)/bin/ruff format --check beamstream tests benchmarks

bench: $(STAMP)
	for b in benchmarks/*.py; do case $$b in */_*) continue;; esac; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
