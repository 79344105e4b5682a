# The two commands of the quick start: `make book` and `make test`.
# Each one creates .venv and installs everything on first use; later runs reuse it.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# MathJax and the widget manager, served by the site itself (offline reading).
VENDOR := _vendor/VERSIONS
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
# Build flags: -W turns every warning (a failing cell included) into an error,
# -n checks every reference, --all rebuilds from scratch (no stale outputs).
JB_FLAGS := --all -W -n --keep-going
# The tests run on TEST_WORKERS pytest-xdist processes, a test file to one of them
# (tests/conftest.py builds the book once for both). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
PARALLEL := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

.PHONY: book handout test test-fast lab clean venv

venv: $(STAMP) $(VENDOR)

$(STAMP): requirements.txt constraints.txt pyproject.toml binder/overrides.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	# A kernel inside the venv, so that chapters run with the venv's packages.
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (dmlbook)"
	# JupyterLab opens the MyST chapters as notebooks (as Binder does).
	mkdir -p $(dir $(LAB_SETTINGS))
	cp binder/overrides.json $(LAB_SETTINGS)
	touch $(STAMP)

$(VENDOR): scripts/fetch_vendor.sh
	./scripts/fetch_vendor.sh

book: $(STAMP) $(VENDOR)
	rm -rf _build/html _build/.doctrees _build/jupyter_execute
	$(BIN)/jupyter-book build . $(JB_FLAGS)
	@echo
	@echo "The book is at: file://$(CURDIR)/_build/html/index.html"

# The handout edition: the same site without solutions and self-check answers
# (_ext/handout.py), for a lecturer to publish before the exercise class.
# Built apart from the book (its own doctrees and executed notebooks).
handout: $(STAMP) $(VENDOR)
	rm -rf _build/handout
	DMLBOOK_HANDOUT=1 $(BIN)/jupyter-book build . $(JB_FLAGS) --path-output _build/handout
	mv _build/handout/_build/html _build/handout/html
	rm -rf _build/handout/_build
	@echo
	@echo "The handout is at: file://$(CURDIR)/_build/handout/html/index.html"

# Builds the book and the handout (tests/test_book.py, tests/test_handout.py).
test: $(STAMP) $(VENDOR)
	$(BIN)/python -m pytest $(PARALLEL)

# Every test but the end-to-end ones marked slow (book build, browser, JupyterLab,
# Binder environment, handout, launcher): the tests to run while working.
test-fast: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL) -m "not slow"

# JupyterLab at the repository root (chapters/ and workbook/), MyST pages opening as notebooks.
lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir=$(CURDIR) --config=binder/jupyter_server_config.json

clean:
	rm -rf _build .pytest_cache _vendor

# Side-by-side benchmarks against gossipy and Flower (issue: peers). Their own
# environment, so that the book's .venv never carries Ray. Not part of `make test`.
PEERS_VENV  := .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed

.PHONY: bench-peers-env bench-peers

bench-peers-env: $(PEERS_STAMP)

$(PEERS_STAMP): benchmarks/requirements-peers.txt benchmarks/constraints-peers.txt pyproject.toml
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet -r benchmarks/requirements-peers.txt \
		-c benchmarks/constraints-peers.txt
	$(PEERS_VENV)/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(PEERS_STAMP)

bench-peers: $(PEERS_STAMP)
	$(PEERS_VENV)/bin/python benchmarks/peers.py $(PEERS_ARGS)

# Mutation testing (issue #27 part 5), outside `make test`: mutmut, pinned, in its
# own environment (.venv-mutants; the book's .venv is not touched), on a scratch
# copy of the tree. MODULES="units.py: tests/test_units.py ..." picks modules and
# their fast test files (scripts/mutants.sh lists the default; run `make venv` first); the summary and
# each module's surviving mutants are written to _build/mutants/.
MUTANTS_VENV := .venv-mutants

.PHONY: mutants

$(MUTANTS_VENV)/.installed:
	test -x $(MUTANTS_VENV)/bin/python || $(PYTHON) -m venv $(MUTANTS_VENV)
	$(MUTANTS_VENV)/bin/python -m pip install --quiet mutmut==2.5.1
	touch $@

mutants: $(MUTANTS_VENV)/.installed
	./scripts/mutants.sh

# A seeded random sample of one module's mutants (scripts/mutants_sample.py):
# make mutants-sample MODULE=check/ex2_download_cost.py TESTS='tests/test_check.py -k "cost or bill"'
# (TESTS in single quotes, double quotes inside); SAMPLE, MINUTES and REJUDGE=FILE.json are optional.
.PHONY: mutants-sample
mutants-sample: $(MUTANTS_VENV)/.installed
	$(MUTANTS_VENV)/bin/python scripts/mutants_sample.py --module '$(MODULE)' --tests '$(TESTS)' \
		--sample $(or $(SAMPLE),80) $(if $(MINUTES),--max-minutes $(MINUTES)) \
		$(if $(REJUDGE),--rejudge '$(REJUDGE)')
