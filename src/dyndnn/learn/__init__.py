"""The learning wing: CIFAR-10 data, the grouped AlexNet and its baselines, incremental training,
evaluation and ONNX export. Imports the core (config, arch, defaults, provenance) and the on-board
flags only."""
