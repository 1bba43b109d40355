from dyndnn.arch import ModelConfig
from dyndnn.config import BASELINE_OPTIONS, TrainConfig
from dyndnn.learn.baselines import train_baseline_job
from dyndnn.logs import log_to

with log_to(snakemake.log[0]):
    train_baseline_job(
        kind=snakemake.wildcards.baseline,
        data_path=snakemake.input.data,
        model_cfg=ModelConfig(**snakemake.params.model),
        train_cfg=TrainConfig(**snakemake.params.train),
        seed=snakemake.params.seed,
        out_ckpt=snakemake.output.ckpt,
        out_history=snakemake.output.history,
        static_ckpt=snakemake.input.static[0] if snakemake.input.static else None,
        finetune_epochs=getattr(BASELINE_OPTIONS[snakemake.wildcards.baseline](**snakemake.params.options), "finetune_epochs", 0),
        resume_dir=snakemake.params.resume_dir,
        threads=snakemake.threads,
        device=snakemake.config["runtime"]["device"],  # where it runs: not a param (changing it reruns nothing)
        width_ckpts=list(snakemake.input.widths),
    )
