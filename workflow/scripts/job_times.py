from dyndnn.logs import log_to
from dyndnn.results.aggregate import job_times

with log_to(snakemake.log[0]):
    job_times(list(snakemake.input), snakemake.output[0], snakemake.params.repo)
