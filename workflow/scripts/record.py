from dyndnn.logs import log_to
from dyndnn.provenance import git_state, read_meta
from dyndnn.results.record import make_record
from dyndnn.results.runs import load_run

with log_to(snakemake.log[0]):
    meta = read_meta(snakemake.input.accuracy)
    manifest = make_record(
        "results",
        snakemake.output[0],
        config=snakemake.params.config,
        configfiles=snakemake.params.configfiles,
        git=git_state(snakemake.params.repo),
        precision=meta.get("training_precision", "not recorded"),
        claims=snakemake.input.claims,
        declared=list(snakemake.input),
    )
    load_run(snakemake.output[0])  # the record's tables hold their contract: a buggy producer fails here, not in a reader
    print({k: v for k, v in manifest.items() if k not in ("config", "files")}, f"{len(manifest['files'])} files")
