localrules:
    aggregate,
    figure_accuracy,
    figure_latency,
    report,


rule aggregate:
    """Tidy long-form tables, each with a .meta.json provenance sidecar."""
    input:
        eval=expand("results/eval/{model}.csv", model=MODELS),
        per_class=expand("results/eval/{model}.per_class.csv", model=MODELS),
        summary=expand("results/profile/{board}/summary.csv", board=BOARDS),
        samples=expand("results/profile/{board}/samples.csv", board=BOARDS),
        facts=expand("results/profile/{board}/board.json", board=BOARDS),
        dataset=rules.prepare_data.output.meta,
    output:
        accuracy="results/tables/accuracy.csv",
        per_class="results/tables/per_class.csv",
        latency_samples="results/tables/latency_samples.csv",
        latency_summary="results/tables/latency_summary.csv",
        boards="results/tables/boards.csv",
    params:
        repo=workflow.basedir,
        config=config,
    log:
        "results/logs/aggregate.log",
    script:
        "../scripts/aggregate.py"


rule figure_accuracy:
    input:
        accuracy=rules.aggregate.output.accuracy,
    output:
        svg=report("results/figures/accuracy.svg", caption="../../report/captions/accuracy.rst", category="Accuracy"),
        png="results/figures/accuracy.png",
    log:
        "results/logs/figures/accuracy.log",
    script:
        "../scripts/figure_accuracy.py"


rule figure_latency:
    input:
        samples=rules.aggregate.output.latency_samples,
    output:
        svg=report("results/figures/latency.svg", caption="../../report/captions/latency.rst", category="Latency"),
        png="results/figures/latency.png",
    log:
        "results/logs/figures/latency.log",
    script:
        "../scripts/figure_latency.py"


rule report:
    input:
        accuracy=rules.aggregate.output.accuracy,
        samples=rules.aggregate.output.latency_samples,
        boards=rules.aggregate.output.boards,
        dataset=rules.prepare_data.output.meta,
        accuracy_png=rules.figure_accuracy.output.png,
        latency_png=rules.figure_latency.output.png,
        template=REPORT_TEMPLATE,
    output:
        "results/report/index.html",
    params:
        title=config["report"]["title"],
    log:
        "results/logs/report.log",
    script:
        "../scripts/report.py"
