import torch

from dyndnn.export import export_onnx
from dyndnn.logs import log_to

with log_to(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    manifest = export_onnx(
        checkpoint=snakemake.input.ckpt,
        groups=int(snakemake.wildcards.k),
        test_data=snakemake.input.test,
        out_onnx=snakemake.output.onnx,
        out_manifest=snakemake.output.manifest,
        out_torchscript=snakemake.output.torchscript,
        **snakemake.params.export,
    )
    print(manifest)
