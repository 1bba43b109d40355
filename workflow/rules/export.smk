rule export:
    """Every configuration k = 1..G of a model as static ONNX (and TorchScript), each checked
    against PyTorch on test images. One job per model: the imports (torch, ONNX, the exporter)
    cost more than exporting one configuration."""
    input:
        ckpt=final_checkpoint,
        test=rules.prepare_data.output.test,
    output:
        onnx=expand("results/onnx/{{model}}/g{k}.onnx", k=range(1, G + 1)),
        manifest=expand("results/onnx/{{model}}/g{k}.json", k=range(1, G + 1)),
        torchscript=expand("results/torchscript/{{model}}/g{k}.pt", k=range(1, G + 1)),
    log:
        "results/logs/export/{model}.log",
    benchmark:
        "results/benchmarks/export/{model}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    params:
        export=export_settings,
    script:
        "../scripts/export.py"
