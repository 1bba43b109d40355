from dyndnn.logs import log_to
from dyndnn.results.report import report_from_files

with log_to(snakemake.log[0]):
    report_from_files(
        dict(snakemake.input.items()),
        snakemake.output[0],
        snakemake.params.title,
        snakemake.params.top1_floor,
        snakemake.params.configfiles,
        max_others_share=snakemake.params.max_others_share,
        reference=snakemake.params.reference,
        max_median_spread=snakemake.params.max_median_spread,
        max_control_spread=snakemake.params.max_control_spread,
    )
