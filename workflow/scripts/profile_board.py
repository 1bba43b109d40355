from pathlib import Path

from dyndnn.boards import profile_board
from dyndnn.logs import log_to

with log_to(snakemake.log[0]):
    models = [
        {"label": f"{Path(p).parent.name}/{Path(p).stem}", "path": p, "model": Path(p).parent.name, "groups": int(Path(p).stem[1:])}
        for p in snakemake.input.onnx
    ]
    summary = profile_board(snakemake.params.board, models, snakemake.params.settings, Path(snakemake.output.summary).parent)
    print(summary.to_string())
