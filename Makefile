# llmlab: `make grade` grades your work; `make test` is the maintainers' full check (CI runs it).
# Both create .venv on first use with install.py (on Linux torch comes from PyTorch's CPU-only
# index when it can be reached; see install.py). Without make: `python install.py`.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SITE_STAMP := $(VENV)/.site-installed
BROWSER_STAMP := $(VENV)/.browser-installed
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: grade test site setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml install.py
	$(PYTHON) install.py

# The site's tools (Sphinx, MyST-NB, MathJax, Playwright); for its browser test, also Chromium.
$(SITE_STAMP): pyproject.toml install.py
	$(PYTHON) install.py --site

$(BROWSER_STAMP): pyproject.toml install.py
	$(PYTHON) install.py --site --browser

grade: $(STAMP)
	$(BIN)/llmlab grade $(TOPICS)

test: $(BROWSER_STAMP)
	@if [ ! -d solutions ]; then \
		echo "make test checks the course itself and needs solutions/ (maintainers only)."; \
		echo "In a student bundle, run: make grade   or   pytest exercises/NN_topic"; \
		exit 2; fi
	$(BIN)/python ci/gates.py

# The textbook as a website in build/site/ (open build/site/index.html): builds and executes
# the chapters, then renders them. After `make test`, `llmlab book build` alone suffices.
site: $(SITE_STAMP)
	$(BIN)/llmlab notebooks build
	$(BIN)/llmlab notebooks execute
	$(BIN)/llmlab book build

clean:
	rm -rf $(VENV) .llmlab build
