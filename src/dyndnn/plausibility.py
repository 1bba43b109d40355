"""Legal but implausible settings, said before any job runs (the Snakefile logs each as a
warning); what cannot be legal is refused by `dyndnn.config.load` instead."""

from __future__ import annotations

from dyndnn.config import SPLIT_SIZES, Config

__all__ = ["warnings"]


def warnings(cfg: Config) -> list[str]:
    """Legal but implausible combinations, said before any job runs (the Snakefile logs them):
    a batch larger than the training set (one step per epoch)."""
    out = []
    n_train = cfg.data.train_subset or SPLIT_SIZES["train"]
    if cfg.train.batch_size > n_train:
        out.append(
            f"train.batch_size {cfg.train.batch_size} is larger than the {n_train:,} training images: every epoch is one step "
            "of a smaller batch (set a smaller train.batch_size or a larger data.train_subset)"
        )
    return out
