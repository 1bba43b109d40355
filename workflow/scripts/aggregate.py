from dyndnn.logs import log_to
from dyndnn.results.aggregate import aggregate

with log_to(snakemake.log[0]):
    aggregate(
        dict(snakemake.input.items()),
        dict(snakemake.output.items()),
        repo=snakemake.params.repo,
        config=snakemake.params.config,
        primary_seed=snakemake.params.primary_seed,
        models=snakemake.params.models,
        designs=snakemake.params.designs,
    )
