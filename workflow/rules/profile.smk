rule bundle_board:
    """What a board needs to run the runner, cross-built here for its architecture from
    packages (Debian sysroot or PyPI wheels), with the runner and the models: one tarball
    that profile_board copies over. Boards without a bundle block use their installed runtime."""
    input:
        models=exported_models,
        board=board_file,
    output:
        bundle="results/bundles/{board}/bundle.tar.gz",
        manifest="results/bundles/{board}/bundle.json",
    log:
        "results/logs/bundle_board/{board}.log",
    benchmark:
        "results/benchmarks/bundle_board/{board}.tsv"
    localrule: True  # downloads packages (cached by the hash of the package list)
    conda:
        CONDA_ENV
    threads: 1
    params:
        board=board_config,
    script:
        "../scripts/bundle_board.py"


rule profile_board:
    """Time (and where the board allows, power/energy of) every exported model on every mapping."""
    input:
        onnx=exported_models,
        board=board_file,
        bundle=board_bundle,
    output:
        summary="results/profile/{board}/summary.csv",
        samples="results/profile/{board}/samples.csv",
        facts="results/profile/{board}/board.json",
    log:
        "results/logs/profile_board/{board}.log",
    benchmark:
        "results/benchmarks/profile_board/{board}.tsv"
    localrule: True  # boards are reached from the submit host; never from a cluster node
    conda:
        CONDA_ENV
    threads: profile_threads
    params:
        board=board_config,
        settings=measure_settings(),
    script:
        "../scripts/profile_board.py"
