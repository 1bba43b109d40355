from dyndnn.logs import log_to
from dyndnn.results.simulate import simulate_tables

with log_to(snakemake.log[0]):
    summary = simulate_tables(
        snakemake.input.operating_points,
        snakemake.input.latency_samples,
        snakemake.params.settings,
        snakemake.output.runs,
        snakemake.output.summary,
    )
    print(summary.to_string())
