# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Everything is cached: the .venv, the installed package, the jars from Maven Central.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CLI    := $(VENV)/bin/crypto-pipeline
STAMP  := $(VENV)/.installed
JARS   := .state/jvm/.resolved
CHROMIUM := /usr/bin/chromium
export DAGSTER_HOME := $(CURDIR)

.PHONY: demo test ui live kafka-up kafka-down lint bench clean prereqs browser dashboard

prereqs:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found: install Python 3.10-3.12 (Debian: apt-get install python3 python3-venv)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 12) else 1)' || { echo "error: $(PYTHON) is $$($(PYTHON) -V 2>&1); this project needs Python 3.10-3.12 (set PYTHON=python3.11)"; exit 1; }
	@command -v java >/dev/null 2>&1 || { echo "error: Java not found: install a Java 17 runtime (Debian: apt-get install openjdk-17-jdk-headless)"; exit 1; }
	@command -v mvn >/dev/null 2>&1 || { echo "error: Maven not found: install Apache Maven (Debian: apt-get install maven)"; exit 1; }

$(STAMP): setup.py | prereqs
	@$(PYTHON) -m venv $(VENV) || { echo "error: could not create $(VENV): install the venv module (Debian: apt-get install python3-venv)"; exit 1; }
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	@touch $@

$(JARS): $(STAMP) jvm/kafka-broker/pom.xml jvm/spark-kafka/pom.xml jvm/spark-connect/pom.xml jvm/spark-s3/pom.xml jvm/spark-iceberg/pom.xml
	$(CLI) jars
	@touch $@

demo: $(JARS)
	$(CLI) demo

test: $(JARS) browser
	$(PY) -m pytest crypto_assets_tests --durations=15

# The UI test (crypto_assets_tests/ui) drives Debian's Chromium with Playwright; no browser is
# downloaded. Installed here when missing; if that is impossible the test fails and says how.
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else \
	    echo "warning: $(CHROMIUM) is missing: run 'sudo apt-get install -y --no-install-recommends chromium'"; exit 0; fi; \
	  APT="$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -qq"; \
	  echo "installing Debian's chromium for the UI test"; \
	  $$APT install -y --no-install-recommends chromium >/dev/null 2>&1 \
	    || { $$APT update && $$APT install -y --no-install-recommends chromium >/dev/null; } \
	    || echo "warning: could not install chromium; the UI test will fail"; }

ui: $(JARS)
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# The pipeline running continuously: broker, producer (SOURCE=coinbase needs internet;
# SOURCE=synthetic works offline), streaming Bronze, dagster dev with the sensors on.
SOURCE ?= coinbase
live: $(JARS)
	$(CLI) live --source $(SOURCE)

# The lake's dashboard (Streamlit) on http://127.0.0.1:8501 (CRYPTO_DASHBOARD_PORT); refreshes by itself
# while `make live` runs.
dashboard: $(STAMP)
	$(CLI) dashboard

kafka-up: $(JARS)
	$(CLI) kafka up

kafka-down: $(STAMP)
	$(CLI) kafka down

# Every benchmark of the README's table, one after another (about 90 minutes on 2 cores, nothing else
# running); each prints its figures and a RESULT line and writes benchmarks/results/<name>.json. The last
# streaming case publishes the UTC day's history first (up to 23 hours: run it late in a UTC day for the
# end-of-day figure), the one before it measures trade -> Gold at 1,000 messages/s.
bench: $(JARS) browser
	cd benchmarks && for b in bench_broker_start bench_producer bench_bronze_ingest bench_silver bench_gold bench_incremental bench_sql bench_dashboard; do \
	  ../$(PY) $$b.py || exit 1; done
	cd benchmarks && ../$(PY) bench_streaming.py sustained && ../$(PY) bench_streaming.py latency && \
	  ../$(PY) bench_streaming.py latency --rate 1000 --minutes 10 && \
	  ../$(PY) bench_streaming.py latency --history-minutes 1380

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	-$(CLI) kafka down
	rm -rf .state lake history schedules storage logs .telemetry
