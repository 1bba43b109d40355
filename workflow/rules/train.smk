rule train_increment:
    """Stage k: train group k with groups 1..k-1 frozen (weights and BN statistics)."""
    input:
        data=rules.prepare_data.output.train,
        previous=previous_stage,
        targets=teacher_targets_for,
    output:
        ckpt="results/models/{dyn}/seed{seed}/stage{k}.pt",
        history="results/models/{dyn}/seed{seed}/stage{k}.history.csv",
    log:
        "results/logs/train_increment/{dyn}/seed{seed}/stage{k}.log",
    benchmark:
        "results/benchmarks/train_increment/{dyn}/seed{seed}/stage{k}.tsv"
    priority: CHAIN_PRIORITY
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
        widths=static_widths,
    output:
        ckpt="results/models/{baseline}/seed{seed}/final.pt",
        history="results/models/{baseline}/seed{seed}/history.csv",
    log:
        "results/logs/train_baseline/seed{seed}/{baseline}.log",
    benchmark:
        "results/benchmarks/train_baseline/seed{seed}/{baseline}.tsv"
    priority: baseline_priority
    conda:
        CONDA_ENV
    threads: training_threads
    params:
        model=BASELINE_MODEL,
        train=BASELINE_RECIPE,
        seed=seed_of,
        options=baseline_options,
        resume_dir="results/models/{baseline}/seed{seed}/resume",
    script:
        "../scripts/train_baseline.py"


rule train_static_width:
    """Width k of the static baseline, one job per width: widths train side by side, and the
    100 % model (teacher, source of truncated and pruned) does not wait for the others."""
    input:
        data=rules.prepare_data.output.train,
    output:
        ckpt="results/models/static/seed{seed}/w{k}.pt",
        history="results/models/static/seed{seed}/w{k}.history.csv",
    log:
        "results/logs/train_static_width/seed{seed}/w{k}.log",
    benchmark:
        "results/benchmarks/train_static_width/seed{seed}/w{k}.tsv"
    priority: static_width_priority
    conda:
        CONDA_ENV
    threads: training_threads
    params:
        model=BASELINE_MODEL,
        train=BASELINE_RECIPE,
        seed=seed_of,
        resume="results/models/static/seed{seed}/resume/w{k}.pt",
    script:
        "../scripts/train_static_width.py"


rule teacher_targets:
    """The static 100 % model's logits of every epoch's views, computed once for the stages of
    a distilled design (each stage would otherwise run the teacher on every batch)."""
    input:
        data=rules.prepare_data.output.train,
        teacher=teacher_model,
    output:
        "results/models/{dyn}/seed{seed}/teacher_targets.pt",
    log:
        "results/logs/teacher_targets/{dyn}/seed{seed}.log",
    benchmark:
        "results/benchmarks/teacher_targets/{dyn}/seed{seed}.tsv"
    priority: CHAIN_PRIORITY
    conda:
        CONDA_ENV
    threads: training_threads
    params:
        views=teacher_views,
        seed=seed_of,
    script:
        "../scripts/teacher_targets.py"
