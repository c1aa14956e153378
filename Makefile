# make run   the whole stack locally (Temporal dev server, Slack emulator, worker, API)
# make test  the test suite
# Works on a fresh clone without prompts (CI=true, no stdin).

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip --quiet --disable-pip-version-check --no-input
# make test runs the suite on this many processes, each with its own dev server and emulator:
# most tests wait on seconds-scale timers, so two processes fit two cores.
TEST_PROCESSES ?= 2

.PHONY: venv run test lint bench chaos clean

venv: $(STAMP)

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "python3.11 (or python3 >= 3.11) not found; set PYTHON=..." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Re-install only when pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[dev]'
	@touch $(STAMP)

run: venv
	$(BIN)/python -m devrun.runner

test: venv
	@.ci/ensure-test-tools
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_PROCESSES) $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

# Lists the harnesses and the command for each; they run one at a time, for minutes.
bench: venv
	@$(BIN)/python -m bench

# 50 incidents through whole lifecycles under SIGKILLed workers, failing Slack writes and a
# Temporal restart; prints the figures. The suite runs a short form (tests/test_chaos.py).
chaos: venv
	$(BIN)/python -m tests.chaos --incidents 50

clean:
	rm -rf .data
