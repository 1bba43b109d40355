"""Architecture facts of the grouped AlexNet as plain values: no torch.

Scope: `ModelConfig` (what every checkpoint stores), the pool positions, the
connectivity, head and export-layout choices, and `arch_config(cfg, k)`. The config
module, the Snakefile's DAG parse, the report and the runner's hosts read these
without importing torch; `dyndnn.learn.model` builds the networks from them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from dyndnn.defaults import default

__all__ = [
    "DYNAMIC",
    "TECHNIQUES",
    "TechniqueFacts",
    "FROM_STATIC",
    "BASELINES",
    "ModelConfig",
    "arch_config",
    "CONNECTIVITIES",
    "HEADS",
    "LAYOUTS",
    "POOL_AFTER",
]

CONNECTIVITIES = ("nested", "grouped")
# sum: logits_k = sum_{j<=k} W_j h_j + b (one head slice per group);
# per_config: logits_k = H_k [h_1..h_k] (one head per configuration, trained at stage k);
# ensemble: logits_k = mean_{j<=k} H_j h_j, head j trained at stage j on group j's features alone
#   (its own loss): every group is a classifier of its own, configuration k averages groups 1..k.
HEADS = ("sum", "per_config", "ensemble")
POOL_AFTER = (0, 1, 4)  # max-pool after conv1, conv2, conv5 (32 -> 16 -> 8 -> 4)
# How a nested layer of a materialised k-group network executes:
# split: one op per output group over the input prefix it reads, outputs concatenated
#        (only the connections that exist run: the default);
# dense: one dense op whose weight has zero blocks above the diagonal (the naive
#        reference layout: every configuration pays for the pruned connections).
LAYOUTS = ("split", "dense")


@dataclass(frozen=True)
class TechniqueFacts:
    """What the pipeline needs to know of a technique, written once (docs/design.md "Where to change what")."""

    description: str
    nets_per_config: bool = False  # one network per configuration (else one network switched at runtime)
    from_static: bool = False  # derived from the static baseline's 100 % model (needs baselines.static)


# Our dynamic DNN, then the "existing works" compared against (dyndnn.learn.baselines trains
# them); `static` comes first: the techniques `from_static` derive from its 100 % model.
DYNAMIC = "dynamic"  # our technique's name: its models, tables and checkpoints
TECHNIQUES = {
    DYNAMIC: TechniqueFacts("ours: groups trained incrementally, later groups pruned or added back at runtime"),
    "static": TechniqueFacts("one dense model per width (model switching)", nets_per_config=True),
    "slimmable": TechniqueFacts("shared weights with a private BN per width, trained jointly (Yu et al. 2019)"),
    "truncated": TechniqueFacts("the 100 % static model cut at runtime, no retraining", from_static=True),
    "pruned": TechniqueFacts("L1 filter pruning of the 100 % static model, fine-tuned per width", nets_per_config=True, from_static=True),
}
BASELINES = tuple(name for name in TECHNIQUES if name != DYNAMIC)
FROM_STATIC = tuple(name for name, facts in TECHNIQUES.items() if facts.from_static)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the grouped AlexNet; JSON-able, stored in every checkpoint."""

    groups: int = default("model", "groups")
    connectivity: str = default("model", "connectivity")
    conv_channels: tuple[int, ...] = default("model", "conv_channels")
    fc_features: tuple[int, ...] = default("model", "fc_features")
    num_classes: int = 10
    head: str = default("model", "head")
    dropout: float = default("model", "dropout")
    # Training stage k only: dropout on the frozen groups' features where group k reads
    # them, so the new group cannot lean on them alone and learns complementary filters.
    # Never active at inference, never touches the frozen groups' own outputs.
    frozen_dropout: float = default("model", "frozen_dropout")
    image_size: int = 32

    def __post_init__(self):
        object.__setattr__(self, "conv_channels", tuple(self.conv_channels))
        object.__setattr__(self, "fc_features", tuple(self.fc_features))
        if self.connectivity not in CONNECTIVITIES:
            raise ValueError(f"connectivity must be one of {CONNECTIVITIES}, got {self.connectivity!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if len(self.conv_channels) != 5:
            raise ValueError(f"conv_channels needs 5 entries (AlexNet), got {len(self.conv_channels)}")
        for name, widths in (("conv_channels", self.conv_channels), ("fc_features", self.fc_features)):
            bad = [w for w in widths if w % self.groups]
            if bad:
                raise ValueError(f"model.{name} {list(widths)}: {bad} not divisible by groups={self.groups}")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def feature_size(self) -> int:
        """Spatial size after the three pools."""
        return self.image_size // 2 ** len(POOL_AFTER)


def arch_config(cfg: ModelConfig, k: int) -> dict:
    """JSON-able description of configuration k of any technique built on `cfg`."""
    G = cfg.groups
    return {
        **cfg.to_dict(),
        "active_groups": k,
        "width_pct": round(100 * k / G),
        "conv_channels_active": [c * k // G for c in cfg.conv_channels],
        "fc_features_active": [c * k // G for c in cfg.fc_features],
    }
