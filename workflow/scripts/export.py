import torch

from dyndnn.learn.export import export_technique
from dyndnn.logs import log_to

with log_to(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    outputs = list(zip(snakemake.output.onnx, snakemake.output.manifest, snakemake.output.torchscript))
    for manifest in export_technique(snakemake.input.ckpt, snakemake.input.test, outputs, **snakemake.params.export):
        print(manifest)
