# tomte — two commands: `make run` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
DB     ?= data/tomte.sqlite
PORT   ?= 8501

APT_RUN  := libsqlite3-mod-spatialite fonts-dejavu-core
APT_TEST := $(APT_RUN) chromium mapserver-bin
APT_BENCH := $(APT_RUN) postgresql-15-postgis-3

.PHONY: run test bench demo lint system-run system-test system-bench clean

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-test.txt
	@touch $@

system-run:
	@scripts/apt-ensure.sh $(APT_RUN)

system-test:
	@scripts/apt-ensure.sh $(APT_TEST)

system-bench:
	@scripts/apt-ensure.sh $(APT_BENCH)

$(DB): | $(VENV)/.installed
	$(PY) -m tomte --db $(DB) demo

demo: system-run $(VENV)/.installed
	rm -f $(DB) $(DB)-wal $(DB)-shm
	$(PY) -m tomte --db $(DB) demo

run: system-run $(VENV)/.installed $(DB)
	TOMTE_DB=$(DB) $(VENV)/bin/streamlit run app.py --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check tomte ui pages app.py tests bench scripts
	$(VENV)/bin/mypy tomte

test: system-test $(VENV)/.installed-test lint
	$(VENV)/bin/pytest -q

bench: system-bench $(VENV)/.installed
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) data/cache .pytest_cache .mypy_cache .ruff_cache
