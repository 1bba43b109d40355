# dyndnn: reproduce Xun et al. (MLCAD 2019) end to end. Wiring only: the DAG
# lives in workflow/rules/, the logic in the dyndnn package (src/dyndnn).
import os

from snakemake.utils import min_version

import dyndnn.results.record
import dyndnn.runlock

min_version("9.19")


configfile: os.path.join(workflow.basedir, "config/config.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/profile.smk"
include: "workflow/rules/report.smk"


onstart:
    dyndnn.runlock.hold()  # for as long as this run lives: `make unlock` refuses meanwhile
    dyndnn.results.record.mark_started("results", workflow.basedir)


onsuccess:
    dyndnn.results.record.mark_finished("results", "success")


onerror:
    dyndnn.results.record.mark_finished("results", "error")


rule all:
    input:
        "results/report/index.html",
        "results/record",
