"""The stand-alone code that profile_board copies to a board and runs there (runner, power, dvfs).

Its rule, tested in tests/unit/test_imports.py and tests/unit/test_runner.py: Python 3.6 (JetPack 4),
the standard library, numpy and the board's runtime (onnxruntime, TensorRT or torch), and its
siblings only, imported as siblings when run as a script on a board. Nothing of dyndnn besides.
The host imports it as `dyndnn.boards.onboard` for the same field names and flags.
"""
