# Two entry points that work on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean bench test-triton36

$(STAMP): pyproject.toml Makefile
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,dist]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/train_digits.py --compile

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -rs tests

# the oldest Triton Kiln supports (the GPU image's), in its own environment: the Triton
# tests and the interpreted kernels under it (CI runs the newest Triton)
test-triton36:
	test -d .venv36 || $(PY) -m venv .venv36
	.venv36/bin/python -m pip install -q -e '.[dev]' 'triton==3.6.0'
	.venv36/bin/python -m pytest -n 2 -rs tests/test_triton_*.py tests/test_compile_triton.py \
		tests/test_interpreter_patches.py

bench: $(STAMP)
	$(BIN)/python bench/eager_overhead.py

clean:
	rm -rf $(VENV) .venv36 build *.egg-info
