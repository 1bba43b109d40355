rule profile_board:
    """Time (and where the board allows, power/energy of) every exported model on every mapping."""
    input:
        onnx=exported_models,
        board=board_file,
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
