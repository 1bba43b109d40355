from dyndnn.logs import log_to
from dyndnn.results import plots
from dyndnn.results.sections import load_tables

with log_to(snakemake.log[0]):
    tables = load_tables(dict(snakemake.input.items()), snakemake.params.top1_floor, snakemake.params.reference)
    plots.save(plots.PLOTS[snakemake.params.name](tables), snakemake.output.svg, snakemake.output.png)
