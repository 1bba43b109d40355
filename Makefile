# The two commands: `make reproduce` (main job, default config) and `make test`.
# Both create the virtual environment and install what they need on first use.
PYTHON ?= python3
VENV   ?= .venv
CORES  ?= all
# Data: the official CIFAR-10 release, downloaded once per user into ~/.cache/dyndnn (or
# $DYNDNN_CACHE) and MD5-checked, unless DATA names an offline image-folder archive
# (<top>/{train,test}/<class>/<image>), e.g. `make quick DATA=/data/cifar10-jpeg.tar.gz`.
# The tests read the same DATA (as $DYNDNN_DATA), else the cached official release.
DATA   ?=
# A preset read over config/config.yaml by reproduce, e.g. CONFIGFILE=config/three-seeds.yaml.
CONFIGFILE ?=
BIN     = $(VENV)/bin
comma  := ,
DATA_CONFIG = $(if $(DATA),--config 'data={source: images$(comma) path: $(abspath $(DATA))}')
DATA_ENV    = $(if $(DATA),DYNDNN_DATA=$(abspath $(DATA)))

# A shipped reference record (replay, compare) and the run it is compared with.
REF    ?= reference/quick
RUN    ?= results/record
FROM   ?= results/record
# The documents whose tables are rendered from the shipped records (make readme-tables).
RECORD_DOCS = README.md $(wildcard docs/*.md)

.PHONY: install lock data reproduce quick test test-fast lint unlock replay compare reference-quick reference-main readme-tables clean

install: $(VENV)/.installed

# The exact environment: every package at the version and sha256 hashes of requirements.lock
# (torch's CUDA build for x86_64, which runs on CPUs too), installed by uv, then this package
# without its dependencies. uv because it is faster: a fresh install from the lock with no cache
# took 26 s with uv against 95 s with pip (2-core Intel Xeon VM, 2026-12-06).
UV_VERSION = 0.13.9
UV = $(BIN)/uv
$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip sync --python $(BIN)/python --require-hashes requirements.lock
	$(UV) pip install --python $(BIN)/python --no-deps --no-build-isolation -e .
	touch $@

lock: install                 ## refresh requirements.lock from pyproject.toml and requirements.in (every platform, with hashes)
	$(UV) pip compile pyproject.toml requirements.in --extra test --extra slurm --universal --python-version 3.11 \
		--generate-hashes --custom-compile-command "make lock" --quiet -o requirements.lock

data: install                 ## download the official CIFAR-10 release once into the per-user cache (163 MB)
	$(BIN)/python -m dyndnn.learn.official

reproduce: install            ## full paper reproduction on the local host (config/config.yaml [+ CONFIGFILE])
	$(BIN)/snakemake --cores $(CORES) $(if $(CONFIGFILE),--configfile $(CONFIGFILE)) $(DATA_CONFIG)

quick: install                ## minutes: the main job's design on 5,000 / 1,000 images, 1 epoch per stage
	$(BIN)/snakemake --cores $(CORES) --configfile config/quick.yaml $(DATA_CONFIG)

test: install                 ## the whole suite, including one quick pipeline run (real data: DATA= or the cached release)
	$(DATA_ENV) $(BIN)/python -m pytest

test-fast: install            ## skip the end-to-end pipeline run
	$(DATA_ENV) $(BIN)/python -m pytest -m "not slow"

replay: install               ## minutes, no training: verify $(REF)'s sha256s, re-render its figures and report into results/replay
	rm -rf results/replay
	$(BIN)/dyndnn replay $(REF) results/replay

compare: install              ## number by number: $(RUN) (a record or a results folder) against $(REF)
	$(BIN)/dyndnn compare $(REF) $(RUN)

reference-quick: install      ## re-make reference/quick: a clean quick run with three seeds, its record copied (commit first)
	rm -rf results .snakemake
	$(BIN)/snakemake --cores $(CORES) --configfile config/quick.yaml config/three-seeds.yaml $(DATA_CONFIG)
	rm -rf reference/quick && mkdir -p reference && cp -r results/record reference/quick
	$(MAKE) readme-tables

reference-main:               ## ship a finished main job's record: FROM=<run dir>/results/record (the run's own clone of a commit on main)
	test -f $(FROM)/manifest.json
	rm -rf results/replay-check
	$(BIN)/dyndnn replay $(FROM) results/replay-check
	rm -rf reference/main && mkdir -p reference && cp -r $(FROM) reference/main
	$(MAKE) readme-tables

readme-tables: install       ## rewrite the tables of the shipped records in the README and docs/ from them (<!-- record PATH: NAME --> blocks)
	for f in $(RECORD_DOCS); do \
		for r in $$(sed -n 's/^<!-- record \([^:]*\): .*/\1/p' $$f | sort -u); do $(BIN)/dyndnn summary $$(dirname $$f)/$$r --readme $$f || exit 1; done; \
	done

unlock: install               ## after a killed run: release Snakemake's lock on results/ (then rerun; training resumes); refused while a run is alive
	$(BIN)/python -m dyndnn.runlock check
	$(BIN)/snakemake --unlock --cores 1

LINTED = src workflow/scripts tests benchmarks
lint: install                 ## ruff (check + format), snakefmt and snakemake --lint: what CI runs before the tests
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint --configfile config/quick.yaml
	$(BIN)/snakemake --lint

clean:
	rm -rf results .snakemake
