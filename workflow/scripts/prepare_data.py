import json

from dyndnn.learn.data import prepare
from dyndnn.learn.technique import save_atomic
from dyndnn.logs import log_to

with log_to(snakemake.log[0]):
    with open(snakemake.input.source) as f:
        fetched = json.load(f)
    p = snakemake.params
    splits, meta = prepare(fetched, {"train": p.train_subset, "test": p.test_subset}, seed=p.seed)
    for split, tensors in splits.items():
        save_atomic(tensors, snakemake.output[split])
    with open(snakemake.output.meta, "w") as f:
        json.dump(meta, f, indent=2)
