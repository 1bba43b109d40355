rule train_increment:
    """Stage k: train group k with groups 1..k-1 frozen (weights and BN statistics)."""
    input:
        data=rules.prepare_data.output.train,
        previous=previous_stage,
    output:
        ckpt="results/models/dynamic/stage{k}.pt",
        history="results/models/dynamic/stage{k}.history.csv",
    params:
        model=config["model"],
        train=config["train"],
        seed=config["seed"],
        resume="results/models/dynamic/resume/stage{k}.pt",
    threads: workflow.cores
    log:
        "results/logs/train_increment/stage{k}.log",
    benchmark:
        "results/benchmarks/train_increment/stage{k}.tsv"
    script:
        "../scripts/train_increment.py"


rule train_baseline:
    """An existing work, trained with the same data, recipe and budget (truncated and
    pruned are derived from the static baseline's 100 % model)."""
    input:
        data=rules.prepare_data.output.train,
        static=static_for,
    output:
        ckpt="results/models/{baseline}/final.pt",
        history="results/models/{baseline}/history.csv",
    params:
        model=config["model"],
        train=config["train"],
        seed=config["seed"],
        block=baseline_block,
        resume_dir="results/models/{baseline}/resume",
    threads: workflow.cores
    log:
        "results/logs/train_baseline/{baseline}.log",
    benchmark:
        "results/benchmarks/train_baseline/{baseline}.tsv"
    script:
        "../scripts/train_baseline.py"
