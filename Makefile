# llmlab: `make grade` grades your work; `make test` is the maintainers' full check (CI runs it).
# Both create .venv on first use with install.py (on Linux torch comes from PyTorch's CPU-only
# index when it can be reached; see install.py). Without make: `python install.py`.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: grade test setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml install.py
	$(PYTHON) install.py

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
