# Two entry points: `make demo` (the main job on the built-in default) and `make test`.
# Both create .venv on first use and install everything they need from scratch.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
EXTRAS := torch,keras,lightning,ray,report,pandas,dev
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: demo test lint system-deps venv clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# torch==2.13.0 first: it is the CPU build on local disk; an open range would fetch CUDA.
$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[$(EXTRAS)]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

# Debian packages the demo and browser tests use; skipped quietly where apt is unavailable.
system-deps:
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  missing=""; \
	  [ -d /usr/share/datasets/fashion-mnist ] || missing="$$missing dataset-fashion-mnist"; \
	  [ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	  if [ -n "$$missing" ]; then \
	    (apt-get install -y -q $$missing >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $$missing >/dev/null 2>&1)) || \
	    echo "note: could not install$$missing; dependent tests skip, the demo falls back to digits"; \
	  fi; \
	else echo "note: apt-get unavailable; Fashion-MNIST and chromium must be installed by hand"; fi

demo: venv system-deps
	$(VENV)/bin/memberscope demo

test: venv system-deps
	$(PY) -m pytest -q

# lint-imports checks the import contracts of pyproject.toml ([tool.importlinter]); < 1 s.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) demo-out
