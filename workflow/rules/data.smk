rule download_data:
    input:
        archive=data_archive,
    output:
        source="resources/cifar10/source.json",
    params:
        source=config["data"]["source"],
        path=config["data"]["path"],
        sha256=config["data"]["sha256"],
    localrule: True  # compute nodes of a cluster often have no internet
    log:
        "results/logs/download_data.log",
    script:
        "../scripts/download_data.py"


rule prepare_data:
    input:
        source=rules.download_data.output.source,
    output:
        train="results/data/train.pt",
        test="results/data/test.pt",
        meta="results/data/dataset.json",
    params:
        train_subset=config["data"]["train_subset"],
        test_subset=config["data"]["test_subset"],
        seed=config["seed"],
    localrule: True
    log:
        "results/logs/prepare_data.log",
    script:
        "../scripts/prepare_data.py"
