rule evaluate:
    """Top-1, per-class accuracy, confidence, MACs, params and bytes of every configuration."""
    input:
        ckpt=final_checkpoint,
        test=rules.prepare_data.output.test,
    output:
        table="results/eval/seed{seed}/{model}.csv",
        per_class="results/eval/seed{seed}/{model}.per_class.csv",
    log:
        "results/logs/evaluate/seed{seed}/{model}.log",
    benchmark:
        "results/benchmarks/evaluate/seed{seed}/{model}.tsv"
    conda:
        CONDA_ENV
    threads: training_threads  # every core: measured bit-identical at 1 and 2 threads, 1.8x faster
    params:
        batch_size=CFG.evaluate_batch_size,
        export=EXPORT_GRAPH,  # the exported graph whose executed MACs are counted
    script:
        "../scripts/evaluate.py"
