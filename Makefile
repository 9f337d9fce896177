# The README's two commands: `make run` (the main job, the embedded default) and `make test` (the
# fast test suite, the example plugins' tests included). Both first set up .venv, once: CPU torch
# before anything else (a plain or open-ranged torch pulls a multi-GB CUDA build), then the project,
# every extra the tests exercise and the example plugins the committed suites use, all within
# constraints.txt (the library versions the committed records were made with). `.ci/run` and the
# tests workflow call `make test`, so CI and a newcomer run the same thing.
PYTHON ?= python3
VENV ?= .venv
# Where torch's CPU wheel comes from: empty here (pip finds it locally or on PyPI); the tests
# workflow passes PyTorch's CPU index, where PyPI would give the CUDA build.
TORCH_INDEX ?=
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip -q --disable-pip-version-check

export HF_HUB_OFFLINE := 1
export OMP_WAIT_POLICY := PASSIVE

.PHONY: setup run test bench
setup: $(VENV)/.installed

# Reinstalled when what it installs from changes (pyproject, constraints, the example plugins).
$(VENV)/.installed: pyproject.toml constraints.txt examples/collm-bench-popularity/pyproject.toml \
		examples/collm-bench-llara/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else \
		"collm-bench needs Python 3.11 or newer; found " + sys.version.split()[0] + " (make PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -c constraints.txt torch $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) install -c constraints.txt -e '.[test,cluster,tracking]' -e examples/collm-bench-popularity \
		-e examples/collm-bench-llara
	@touch $@

run: setup
	$(BIN)/collm-bench run $(ARGS)

test: setup
	$(BIN)/python -m pytest $(ARGS)
	$(BIN)/python -m pytest examples/collm-bench-popularity/tests examples/collm-bench-llara/tests

# The performance suite (pytest-benchmark), off in `make test`.
bench: setup
	$(BIN)/python -m pytest benchmarks --benchmark-only --benchmark-enable $(ARGS)
