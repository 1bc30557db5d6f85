# Everything a newcomer needs: `make demo` and `make test`. Nothing but Python 3.11+ and make
# has to be installed beforehand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# tools the tests run for real: an MQTT broker and a serial pty pair
TEST_TOOLS := mosquitto socat

.PHONY: demo test lint typecheck pytest bench test-tools venv clean

demo: $(VENV)/.installed
	$(BIN)/streetlight demo

test: $(VENV)/.installed test-tools lint typecheck pytest

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
	  { echo "streetlight needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) --version 2>&1)." \
	         "Install python3.11 (or newer) and run: make PYTHON=python3.11 $(MAKECMDGOALS)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

test-tools:
	@missing=""; \
	for tool in $(TEST_TOOLS); do \
	  command -v $$tool >/dev/null 2>&1 || [ -x /usr/sbin/$$tool ] || missing="$$missing $$tool"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing; \
	  else \
	    echo "The tests need$$missing (a real MQTT broker and serial pty pair). Install them with:"; \
	    echo "    sudo apt-get install -y$$missing"; \
	    echo "then run make test again."; \
	    exit 1; \
	  fi; \
	fi

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed
	$(BIN)/mypy

pytest: $(VENV)/.installed test-tools
	$(BIN)/pytest

bench: $(VENV)/.installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist var
