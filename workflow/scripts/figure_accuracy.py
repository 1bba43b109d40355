import pandas as pd

from dyndnn import plots
from dyndnn.logs import log_to

with log_to(snakemake.log[0]):
    plots.save(plots.accuracy_per_config(pd.read_csv(snakemake.input.accuracy)), snakemake.output.svg, snakemake.output.png)
