# The two commands: `make reproduce` (main job, default config) and `make test`.
# Both create the virtual environment and install what they need on first use.
PYTHON ?= python3
VENV   ?= .venv
# torch first, pinned: on x86_64 pip takes this CUDA build (runs on CPU too);
# on aarch64 use TORCH="torch==2.9.1 torchvision==0.24.1".
TORCH  ?= torch==2.14.1 torchvision==0.29.1
CORES  ?= all
# Offline data: DATA=../shared/data/cifar10-jpeg.tar.gz (an image-folder archive) instead
# of the official download, e.g. `make reproduce DATA=../shared/data/cifar10-jpeg.tar.gz`.
DATA   ?=
BIN     = $(VENV)/bin
comma  := ,
DATA_CONFIG = $(if $(DATA),--config 'data={source: images$(comma) path: $(abspath $(DATA))}')

# A shipped reference record (replay, compare) and the run it is compared with.
REF    ?= reference/quick
RUN    ?= results/record
FROM   ?= results/record

.PHONY: install reproduce quick test test-fast lint unlock replay compare reference-quick reference-main readme-tables clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install $(TORCH)
	$(BIN)/python -m pip install -e '.[test,slurm]'
	touch $@

reproduce: install            ## full paper reproduction on the local host (config/config.yaml)
	$(BIN)/snakemake --cores $(CORES) $(DATA_CONFIG)

quick: install                ## minutes: 5,000/1,000 images, 1 epoch per stage (offline data)
	$(BIN)/snakemake --cores $(CORES) --configfile config/quick.yaml

test: install                 ## the whole suite, including one quick pipeline run
	$(BIN)/python -m pytest

test-fast: install            ## skip the end-to-end pipeline run
	$(BIN)/python -m pytest -m "not slow"

replay: install               ## minutes, no training: verify $(REF)'s sha256s, re-render its figures and report into results/replay
	$(BIN)/dyndnn replay $(REF) results/replay

compare: install              ## number by number: $(RUN) (a record or a results folder) against $(REF)
	$(BIN)/dyndnn compare $(REF) $(RUN)

reference-quick: install      ## re-make reference/quick: a clean quick run with three seeds, its record copied (commit first)
	rm -rf results .snakemake
	$(BIN)/snakemake --cores $(CORES) --configfile config/quick.yaml config/three-seeds.yaml
	rm -rf reference/quick && mkdir -p reference && cp -r results/record reference/quick

reference-main:               ## ship a finished main job's record: FROM=<run dir>/results/record (the run's own clone of a commit on main)
	test -f $(FROM)/manifest.json
	$(BIN)/dyndnn replay $(FROM) results/replay-check
	rm -rf reference/main && mkdir -p reference && cp -r $(FROM) reference/main
	$(BIN)/dyndnn summary reference/main --readme README.md

readme-tables: install       ## rewrite the README's tables of the shipped records from them (<!-- record PATH: NAME --> blocks)
	for r in $$(sed -n 's/^<!-- record \([^:]*\): .*/\1/p' README.md | sort -u); do $(BIN)/dyndnn summary $$r --readme README.md || exit 1; done

unlock: install               ## after a killed run: release Snakemake's lock on results/ (then rerun; training resumes)
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
