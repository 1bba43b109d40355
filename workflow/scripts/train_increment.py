from dyndnn.arch import ModelConfig
from dyndnn.config import TrainConfig
from dyndnn.learn.train import train_increment
from dyndnn.logs import log_to

with log_to(snakemake.log[0]):
    train_increment(
        data_path=snakemake.input.data,
        model_cfg=ModelConfig(**snakemake.params.model),
        cfg=TrainConfig(**snakemake.params.train),
        stage=int(snakemake.wildcards.k),
        seed=snakemake.params.seed,
        out_ckpt=snakemake.output.ckpt,
        out_history=snakemake.output.history,
        previous_ckpt=snakemake.input.previous[0] if snakemake.input.previous else None,
        resume_path=snakemake.params.resume,
        threads=snakemake.threads,
        device=snakemake.config["runtime"]["device"],  # where it runs: not a param (changing it reruns nothing)
        targets_path=snakemake.input.targets[0] if snakemake.input.targets else None,
    )
