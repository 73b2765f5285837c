# Two commands a newcomer needs (see README):
#   make run    set up .venv with what running needs, then start the web app with the example cases
#               (PORT=8000 by default: make run PORT=8080)
#   make test   set up .venv with the test tools (and the browser/PDF tools), run the suite with progress
PY ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run

.PHONY: run test test-spark setup system-deps system-deps-spark example serve bench bench-deps bench-quick fitted vignettes

$(VENV)/bin/python:
	@echo "==> creating the virtual environment .venv ($(PY))"
	$(PY) -m venv $(VENV)
	@$(BIN)/pip install -q --upgrade pip

# what running needs: nelm and its runtime dependencies, no test tools, no Java, no Spark
$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	@echo "==> installing nelm and what running it needs into .venv (the first time takes a minute or two)"
	$(BIN)/pip install --progress-bar on -e .
	touch $(RUN_STAMP)

# the test tools on top (pytest, hypothesis, playwright, pypdf, duckdb, ...)
$(STAMP): pyproject.toml | $(VENV)/bin/python
	@echo "==> installing nelm with its test tools into .venv"
	$(BIN)/pip install --progress-bar on -e '.[test]'
	touch $(STAMP) $(RUN_STAMP)

setup: $(STAMP)

# Debian packages the tests use: chromium for the browser tests, poppler-utils (pdftoppm) to
# render the PDF report, pango for WeasyPrint. Skipped when present. Waits up to 10 minutes
# for another apt/dpkg process to release its lock instead of failing.
system-deps:
	@if ! command -v chromium >/dev/null || ! command -v pdftoppm >/dev/null; then \
	  echo "==> installing chromium and poppler-utils (Debian packages the browser and PDF tests use)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive \
	    apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
	    chromium poppler-utils libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core >/dev/null; \
	fi

# the Spark check's extra needs: a Java runtime
system-deps-spark: system-deps
	@if ! command -v java >/dev/null; then \
	  echo "==> installing a Java runtime for the Spark check"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive \
	    apt-get -o DPkg::Lock::Timeout=600 install -y -qq default-jre-headless >/dev/null; \
	fi

example: $(RUN_STAMP)
	$(BIN)/nelm assess examples/solitary_resectable.json

run: $(RUN_STAMP)
	@echo "==> the example patient, in short (nelm assess examples/solitary_resectable.json prints it all):"
	@$(BIN)/python -c "from nelm.patient import load_patient; from nelm.assessment import assess; \
	from nelm.summary import class_line, plan_view; \
	a = assess(load_patient('examples/solitary_resectable.json')); p = plan_view(a); \
	print('    ' + class_line(a['classification'])); \
	print('    plan ' + p['status'] + ', leading recommendation: ' + (p['leading'] or 'none'))"
	@echo "==> starting the web app with the example cases on http://127.0.0.1:$(PORT)/  (Ctrl+C stops it)"
	$(BIN)/nelm serve --examples examples --port $(PORT)

# The suite with progress (a percentage), spread over the machine's cores by pytest-xdist
# (about 9 minutes on 2 cores; every test is independent of the others: own temporary
# directories, own PostgreSQL schemas, free ports), then the Spark check last: it
# runs when pyspark and Java are installed (make test-spark installs them) and its result is
# reported after the rest; it never holds up the rest of the suite. The exit code is the
# suite's, or the Spark check's when that ran and failed.
SPARK_TEST := tests/screen/test_sql_spark.py
test: $(STAMP) system-deps
	@echo "==> running the test suite on $$(nproc) cores (pytest-xdist), with a percentage; the Spark check comes last"
	@$(BIN)/python -m pytest -n auto --dist worksteal --ignore=$(SPARK_TEST); status=$$?; \
	if $(BIN)/python -c "import pyspark" 2>/dev/null && command -v java >/dev/null; then \
	  echo "==> the Spark check: the SQL view in Spark (about a minute)"; \
	  $(BIN)/python -m pytest -q $(SPARK_TEST) || status=$$((status ? status : 1)); \
	else \
	  echo "==> the Spark check was not run: pyspark or Java is missing (make test-spark installs both and runs it)"; \
	fi; exit $$status

# the Spark check alone, with what it needs (pyspark, a large wheel, and a Java runtime)
SPARK_STAMP := $(VENV)/.installed-spark
$(SPARK_STAMP): $(STAMP)
	@echo "==> installing pyspark into .venv"
	$(BIN)/pip install --progress-bar on -e '.[test,spark]'
	touch $(SPARK_STAMP)

test-spark: $(SPARK_STAMP) system-deps-spark
	$(BIN)/python -m pytest $(SPARK_TEST)

vignettes: $(STAMP)
	$(BIN)/python ../shared/vignettes/check.py --nelm $(BIN)/nelm ../shared/vignettes/public ../shared/vignettes/public-v2 ../shared/vignettes/real-public

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
