rule train_increment:
    """Stage k: train group k with groups 1..k-1 frozen (weights and BN statistics)."""
    input:
        data=rules.prepare_data.output.train,
        previous=previous_stage,
        teacher=teacher_for,
    output:
        ckpt="results/models/{dyn}/seed{seed}/stage{k}.pt",
        history="results/models/{dyn}/seed{seed}/stage{k}.history.csv",
    log:
        "results/logs/train_increment/{dyn}/seed{seed}/stage{k}.log",
    benchmark:
        "results/benchmarks/train_increment/{dyn}/seed{seed}/stage{k}.tsv"
    conda:
        CONDA_ENV
    threads: training_threads
    params:
        model=design_model,
        train=stage_recipe,
        seed=seed_of,
        resume="results/models/{dyn}/seed{seed}/resume/stage{k}.pt",
    script:
        "../scripts/train_increment.py"


rule train_baseline:
    """An existing work, trained with the same data, recipe and budget (truncated and
    pruned are derived from the static baseline's 100 % model)."""
    input:
        data=rules.prepare_data.output.train,
        static=static_for,
    output:
        ckpt="results/models/{baseline}/seed{seed}/final.pt",
        history="results/models/{baseline}/seed{seed}/history.csv",
    log:
        "results/logs/train_baseline/seed{seed}/{baseline}.log",
    benchmark:
        "results/benchmarks/train_baseline/seed{seed}/{baseline}.tsv"
    conda:
        CONDA_ENV
    threads: training_threads
    params:
        model=BASELINE_MODEL,
        train=BASELINE_RECIPE,
        seed=seed_of,
        block=baseline_block,
        resume_dir="results/models/{baseline}/seed{seed}/resume",
    script:
        "../scripts/train_baseline.py"
