import json

from dyndnn.learn.data import fetch
from dyndnn.logs import log_to

with log_to(snakemake.log[0]):
    p = snakemake.params
    source = fetch(p.source, p.path, sha256=p.sha256)
    with open(snakemake.output.source, "w") as f:
        json.dump(source, f, indent=2)
