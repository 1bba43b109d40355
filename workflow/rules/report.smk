localrules:
    aggregate,
    report,


rule aggregate:
    """Tidy long-form tables, each with a .meta.json provenance sidecar."""
    input:
        eval=expand(rules.evaluate.output.table, model=EVAL_MODELS, seed=SEEDS),
        per_class=expand(rules.evaluate.output.per_class, model=MODELS, seed=SEEDS),
        histories=expand(rules.train_increment.output.history, dyn=DYNAMIC_MODELS, seed=PRIMARY_SEED, k=G),
        baseline_histories=expand(rules.train_baseline.output.history, baseline=BASELINES, seed=SEEDS),
        seed_histories=expand(rules.train_increment.output.history, dyn=DYNAMIC_MODELS, seed=SEEDS, k=G),
        summary=expand(rules.profile_board.output.summary, board=BOARDS),
        samples=expand(rules.profile_board.output.samples, board=BOARDS),
        facts=expand(rules.profile_board.output.facts, board=BOARDS),
        exports=expand("results/onnx/{model}/g{k}.json", model=MEASURED, k=range(1, G + 1)),
        dataset=rules.prepare_data.output.meta,
    output:
        accuracy="results/tables/accuracy.csv",
        accuracy_seeds="results/tables/accuracy_seeds.csv",
        seed_summary="results/tables/seed_summary.csv",
        ablation="results/tables/ablation.csv",
        per_class="results/tables/per_class.csv",
        latency_samples="results/tables/latency_samples.csv",
        latency_summary="results/tables/latency_summary.csv",
        latency_ratios="results/tables/latency_ratios.csv",
        latency_control="results/tables/latency_control.csv",
        operating_points="results/tables/operating_points.csv",
        ranges="results/tables/ranges.csv",
        footprint="results/tables/footprint.csv",
        boards="results/tables/boards.csv",
        exports="results/tables/exports.csv",
        layouts="results/tables/layouts.csv",
    log:
        "results/logs/aggregate.log",
    benchmark:
        "results/benchmarks/aggregate.tsv"
    conda:
        CONDA_ENV
    params:
        repo=repo_dir,
        config=dyndnn.config.results_config(config),  # not the title: it changes no table
        primary_seed=PRIMARY_SEED,
        models=MODELS,
        designs=ablation_designs(),
    script:
        "../scripts/aggregate.py"


rule job_times:
    """Wall and CPU time and peak memory of every job before the report, from the jobs'
    benchmark files: what a reader needs to predict the cost on their own machine."""
    input:
        benchmark_files,
    output:
        "results/tables/job_times.csv",
    log:
        "results/logs/job_times.log",
    localrule: True
    conda:
        CONDA_ENV
    params:
        repo=repo_dir,
    script:
        "../scripts/job_times.py"


rule simulate_budget:
    """Runtime managers on a changing time budget, over the measured operating points."""
    input:
        operating_points=rules.aggregate.output.operating_points,
        latency_samples=rules.aggregate.output.latency_samples,
    output:
        runs="results/tables/budget_trace.csv",
        summary="results/tables/budget_summary.csv",
    log:
        "results/logs/simulate_budget.log",
    benchmark:
        "results/benchmarks/simulate_budget.tsv"
    localrule: True
    conda:
        CONDA_ENV
    params:
        settings=config["simulate"],
    script:
        "../scripts/simulate_budget.py"


# The aggregate tables the figures and the report read, each by its one name (the aggregate
# rule's output name, the key the results code reads it by, and its file name under tables/).
RESULT_TABLES = {
    name: getattr(rules.aggregate.output, name)
    for name in ("accuracy", "latency_summary", "latency_samples", "operating_points", "ranges", "footprint", "seed_summary")
}


# One rule per figure (dyndnn.results.figures.FIGURES), each with its caption (written once, there) for --report.
for _fig in FIGURES:

    rule:
        name:
            f"figure_{_fig}"
        input:
            **RESULT_TABLES,
            budget_trace=rules.simulate_budget.output.runs,
            reference=[f"{REFERENCE}/manifest.json"] if REFERENCE else [],
        output:
            svg=report(
                f"results/figures/{_fig}.svg",
                caption="../../report/captions/figure.rst",
                category="Figures",
            ),
            png=f"results/figures/{_fig}.png",
        log:
            f"results/logs/figures/{_fig}.log",
        benchmark:
            f"results/benchmarks/figures/{_fig}.tsv"
        localrule: True
        conda:
            CONDA_ENV
        params:
            name=_fig,
            caption=FIGURES[_fig],
            top1_floor=CFG.report.top1_floor,
            reference=REFERENCE,
        script:
            "../scripts/figure.py"


rule report:
    input:
        **RESULT_TABLES,
        boards=rules.aggregate.output.boards,
        dataset=rules.prepare_data.output.meta,
        figures=expand("results/figures/{fig}.png", fig=FIGURES),
        budget_summary=rules.simulate_budget.output.summary,
        ablation=rules.aggregate.output.ablation,
        layouts=rules.aggregate.output.layouts,
        latency_ratios=rules.aggregate.output.latency_ratios,
        latency_control=rules.aggregate.output.latency_control,
        job_times="results/tables/job_times.csv",
        claims=CLAIMS,
        reference=[f"{REFERENCE}/manifest.json"] if REFERENCE else [],
        template=REPORT_TEMPLATE,
    output:
        "results/report/index.html",
    log:
        "results/logs/report.log",
    benchmark:
        "results/benchmarks/report.tsv"
    conda:
        CONDA_ENV
    params:
        title=CFG.report.title,
        top1_floor=CFG.report.top1_floor,
        configfiles=report_configfiles(),
        max_others_share=CFG.measure.max_others_share,
        max_median_spread=CFG.measure.max_median_spread,
        max_control_spread=CFG.measure.max_control_spread,
        reference=REFERENCE,
    script:
        "../scripts/report.py"


rule record:
    """The run's record (tables, evaluations, board summaries and raw samples, benchmarks, the
    report) with a manifest of sha256s: what `make replay` re-renders and `dyndnn compare`
    reads. No weights."""
    input:
        report=rules.report.output[0],
        eval=expand(rules.evaluate.output.table, model=EVAL_MODELS, seed=SEEDS),
        summary=expand(rules.profile_board.output.summary, board=BOARDS),
        samples=expand(rules.profile_board.output.samples, board=BOARDS),
        facts=expand(rules.profile_board.output.facts, board=BOARDS),
        budget=rules.simulate_budget.output.summary,
        claims=CLAIMS,
        accuracy=rules.aggregate.output.accuracy,
        histories=record_histories,
        # every file it ships is declared here (the record reads nothing else; a table's
        # .meta.json sidecar travels with it)
        tables=[*rules.aggregate.output, *rules.simulate_budget.output, rules.job_times.output[0]],
        per_class=expand(rules.evaluate.output.per_class, model=EVAL_MODELS, seed=SEEDS),
        dataset=rules.prepare_data.output.meta,
        benchmarks=benchmark_files,
    output:
        directory("results/record"),
    log:
        "results/logs/record.log",
    localrule: True
    conda:
        CONDA_ENV
    params:
        config=config,
        configfiles=report_configfiles(),
        repo=repo_dir,
    script:
        "../scripts/record.py"
