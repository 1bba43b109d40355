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
    params:
        board=board_config,
    threads: 1
    localrule: True  # downloads packages (cached by the hash of the package list)
    log:
        "results/logs/bundle_board/{board}.log",
    benchmark:
        "results/benchmarks/bundle_board/{board}.tsv"
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
    params:
        board=board_config,
        settings=measure_settings(),
    threads: profile_threads
    localrule: True  # boards are reached from the submit host; never from a cluster node
    log:
        "results/logs/profile_board/{board}.log",
    script:
        "../scripts/profile_board.py"
