import torch

from dyndnn.export import export_onnx
from dyndnn.logs import log_to

with log_to(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    for k, (onnx, manifest, torchscript) in enumerate(
        zip(snakemake.output.onnx, snakemake.output.manifest, snakemake.output.torchscript), start=1
    ):
        print(
            export_onnx(
                checkpoint=snakemake.input.ckpt,
                groups=k,
                test_data=snakemake.input.test,
                out_onnx=onnx,
                out_manifest=manifest,
                out_torchscript=torchscript,
                **snakemake.params.export,
            )
        )
