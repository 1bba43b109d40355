from dyndnn.boards.bundle import build_bundle
from dyndnn.boards.profiling import models_from_paths, runner_files
from dyndnn.logs import log_to

with log_to(snakemake.log[0]):
    manifest = build_bundle(
        snakemake.params.board,
        models_from_paths(snakemake.input.models),
        runner_files(),
        snakemake.output.bundle,
        snakemake.output.manifest,
    )
    print(f"{snakemake.output.bundle}: {manifest['bundle_bytes'] / 1e6:.1f} MB, runtime {manifest['runtime_bytes'] / 1e6:.1f} MB unpacked")
