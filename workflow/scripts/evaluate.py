import torch

from dyndnn.config import ExportConfig
from dyndnn.learn.data import load_split
from dyndnn.learn.evaluate import evaluate_model
from dyndnn.learn.technique import load_technique
from dyndnn.logs import log_to

with log_to(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    model, _ = load_technique(snakemake.input.ckpt)
    x, y = load_split(snakemake.input.test)
    table, per_class = evaluate_model(
        model, x, y, snakemake.wildcards.model, snakemake.params.batch_size, ExportConfig(**snakemake.params.export)
    )
    table.insert(1, "seed", int(snakemake.wildcards.seed))
    per_class.insert(1, "seed", int(snakemake.wildcards.seed))
    print(table.to_string())
    table.to_csv(snakemake.output.table, index=False)
    per_class.to_csv(snakemake.output.per_class, index=False)
