"""dyndnn: runtime-scalable DNNs (incremental group training + group convolution
pruning) reproduced as a Snakemake pipeline. See README.md and docs/design.md."""

__version__ = "0.1.0"
