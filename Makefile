# Doorkeep: `make run` serves the platform with demo data; `make test` runs every check.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
UV     := .tools/bin/uv
UV_VERSION := 0.13.8
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test lint typecheck pytest install bench messages clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(BIN)/doorkeep: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON) --quiet
	@touch $@

install: $(BIN)/doorkeep

run: install
	$(BIN)/doorkeep serve --demo

test: install lint typecheck pytest

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest -p no:cacheprovider -n $${PYTEST_WORKERS:-2} $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/run_all.py

# After changing a message in the code or a template: refresh the catalogues
# (new messages arrive untranslated; `make test` says which), translate, run
# it again to compile. Needs GNU gettext (apt-get install gettext).
messages: install
	cd src/doorkeep && DOORKEEP_DATA_DIR=$(CURDIR)/var ../../$(BIN)/doorkeep manage makemessages --add-location=file \
		--no-obsolete -l fr -l nl -l it -l de
	cd src/doorkeep && DOORKEEP_DATA_DIR=$(CURDIR)/var ../../$(BIN)/doorkeep manage compilemessages

clean:
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache
