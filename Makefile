# llmlab: `make grade` grades your work; `make test` is the maintainers' full check (CI runs it).
# Both create .venv with pip on first use (torch is pinned to a CPU build; see pyproject.toml).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: grade test setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $(STAMP)

grade: $(STAMP)
	$(BIN)/llmlab grade $(TOPICS)

test: $(STAMP)
	@if [ ! -d solutions ]; then \
		echo "make test checks the course itself and needs solutions/ (maintainers only)."; \
		echo "In a student bundle, run: make grade   or   pytest exercises/NN_topic"; \
		exit 2; fi
	$(BIN)/python ci/gates.py

clean:
	rm -rf $(VENV) .llmlab build
