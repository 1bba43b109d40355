from pathlib import Path

from dyndnn.boards.profiling import models_from_paths, profile_board
from dyndnn.logs import log_to

with log_to(snakemake.log[0]):
    models = models_from_paths(snakemake.input.onnx)
    bundle = snakemake.input.bundle[0] if snakemake.input.bundle else None
    summary = profile_board(snakemake.params.board, models, snakemake.params.settings, Path(snakemake.output.summary).parent, bundle=bundle)
    print(summary.to_string())
