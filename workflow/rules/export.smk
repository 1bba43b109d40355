rule export:
    """The k-group sub-network as static ONNX, checked against PyTorch on test images."""
    input:
        ckpt=final_checkpoint,
        test=rules.prepare_data.output.test,
    output:
        onnx="results/onnx/{model}/g{k}.onnx",
        manifest="results/onnx/{model}/g{k}.json",
        torchscript="results/torchscript/{model}/g{k}.pt",
    params:
        export=export_settings,
    threads: 1
    log:
        "results/logs/export/{model}/g{k}.log",
    benchmark:
        "results/benchmarks/export/{model}/g{k}.tsv"
    script:
        "../scripts/export.py"
