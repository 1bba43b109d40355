from dyndnn.config import TrainConfig
from dyndnn.learn.train import teacher_targets_job
from dyndnn.logs import log_to

with log_to(snakemake.log[0]):
    views = dict(snakemake.params.views)
    epochs = views.pop("epochs")
    teacher_targets_job(
        data_path=snakemake.input.data,
        teacher_ckpt=snakemake.input.teacher[0],
        cfg=TrainConfig(**views),
        seed=snakemake.params.seed,
        epochs=epochs,
        out=snakemake.output[0],
        threads=snakemake.threads,
        device=snakemake.config["runtime"]["device"],  # where it runs: not a param (changing it reruns nothing)
    )
