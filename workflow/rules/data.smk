rule download_data:
    input:
        archive=data_archive,
    output:
        source="resources/cifar10/source.json",
    log:
        "results/logs/download_data.log",
    benchmark:
        "results/benchmarks/download_data.tsv"
    localrule: True  # compute nodes of a cluster often have no internet
    conda:
        CONDA_ENV
    params:
        source=CFG.data.source,
        path=CFG.data.path,
        sha256=CFG.data.sha256,
        content=ARCHIVE_SHA256,  # rerun on other bytes, not on a newer timestamp (data_archive)
    script:
        "../scripts/download_data.py"


rule prepare_data:
    input:
        source=rules.download_data.output.source,
    output:
        train="results/data/train.pt",
        test="results/data/test.pt",
        meta="results/data/dataset.json",
    log:
        "results/logs/prepare_data.log",
    benchmark:
        "results/benchmarks/prepare_data.tsv"
    localrule: True
    conda:
        CONDA_ENV
    params:
        train_subset=CFG.data.train_subset,
        test_subset=CFG.data.test_subset,
        seed=CFG.seed,
    script:
        "../scripts/prepare_data.py"
