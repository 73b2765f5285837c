# Two commands a newcomer needs (see README):
#   make run    set up .venv and assess the embedded example patient, then start the web app
#   make test   set up .venv (and the browser/PDF tools) and run the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test setup system-deps example serve bench bench-deps bench-quick fitted vignettes

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# Debian packages the tests use: chromium for the browser tests, poppler-utils
# (pdftoppm) to render the PDF report, pango for WeasyPrint, a Java runtime for the Spark
# test of the SQL view. Skipped when present. Waits up
# to 10 minutes for another apt/dpkg process to release its lock instead of failing.
system-deps:
	@if ! command -v chromium >/dev/null || ! command -v pdftoppm >/dev/null || ! command -v java >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive \
	    apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
	    chromium poppler-utils libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core default-jre-headless >/dev/null; \
	fi

example: $(STAMP)
	$(BIN)/nelm assess examples/solitary_resectable.json

run: example
	$(BIN)/nelm serve --examples examples

# the tests also run the SQL view in Spark (pyspark, a large wheel): only for `make test`
SPARK_STAMP := $(VENV)/.installed-spark
$(SPARK_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[test,spark]'
	touch $(SPARK_STAMP)

test: $(SPARK_STAMP) system-deps
	$(BIN)/python -m pytest -q

vignettes: $(STAMP)
	$(BIN)/python ../shared/vignettes/check.py --nelm $(BIN)/nelm ../shared/vignettes/public ../shared/vignettes/public-v2

# wrk (Debian package) is the API benchmark's load generator; installed when missing
bench-deps:
	@command -v wrk >/dev/null || { if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq wrk >/dev/null; }

# Every path against its goal (BENCHMARKS.md); BASELINE=<git revision> also measures the
# source of that revision in the same run, for the ratios. Takes a few minutes.
bench: $(STAMP) bench-deps
	$(BIN)/python benchmarks/run_all.py $(if $(BASELINE),--baseline $(BASELINE))

bench-quick: $(STAMP) bench-deps
	$(BIN)/python benchmarks/run_all.py --quick $(if $(BASELINE),--baseline $(BASELINE))

# Refit the literature curves after editing outcomes.yaml, an evidence record or curves.py
# (tests/outcomes/test_fitted.py says when), then commit src/nelm/knowledge/fitted_curves.json.
fitted: $(STAMP)
	$(BIN)/python -c "from nelm.outcomes.fitted import write; print('wrote', write())"
