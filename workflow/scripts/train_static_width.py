from dyndnn.arch import ModelConfig
from dyndnn.config import TrainConfig
from dyndnn.learn.baselines import static_width_job
from dyndnn.logs import log_to

with log_to(snakemake.log[0]):
    static_width_job(
        data_path=snakemake.input.data,
        model_cfg=ModelConfig(**snakemake.params.model),
        train_cfg=TrainConfig(**snakemake.params.train),
        seed=snakemake.params.seed,
        k=int(snakemake.wildcards.k),
        out_ckpt=snakemake.output.ckpt,
        out_history=snakemake.output.history,
        resume_path=snakemake.params.resume,
        threads=snakemake.threads,
        device=snakemake.config["runtime"]["device"],  # where it runs: not a param (changing it reruns nothing)
    )
