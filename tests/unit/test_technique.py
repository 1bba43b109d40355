"""One checkpoint format and one loader for every technique (dyndnn.learn.technique)."""

from __future__ import annotations

import pytest
import torch
from helpers import TINY

from dyndnn.arch import TECHNIQUES, ModelConfig
from dyndnn.config import TrainConfig
from dyndnn.learn.model import GroupedAlexNet
from dyndnn.learn.slimmable import SlimmableAlexNet, l1_prune, width_config
from dyndnn.learn.technique import Technique, checkpoint, load_technique, save_atomic

CFG = ModelConfig(groups=4, **TINY)


def build(kind: str) -> Technique:
    torch.manual_seed(0)
    G = CFG.groups
    if kind == "dynamic":
        return Technique(kind, [GroupedAlexNet(CFG)], CFG)
    if kind == "static":
        return Technique(kind, [SlimmableAlexNet(width_config(CFG, k)) for k in range(1, G + 1)], CFG)
    if kind == "pruned":
        full = SlimmableAlexNet(width_config(CFG, G))
        return Technique(kind, [l1_prune(full, k, G) for k in range(1, G)] + [full], CFG)
    return Technique(kind, [SlimmableAlexNet(CFG, switchable_bn=kind == "slimmable")], CFG)


@pytest.mark.parametrize("kind", TECHNIQUES)
def test_every_technique_round_trips_through_the_one_checkpoint(kind, tmp_path):
    """Saved and loaded: same kind, architecture, resident bytes and outputs at every k."""
    t = build(kind)
    history = [{"epoch": 1, "precision": "fp32"}]
    save_atomic(checkpoint(t, TrainConfig(epochs=1), 7, history, stage=4 if kind == "dynamic" else None), tmp_path / "t.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["t.pt"], "no temporary file left behind"
    loaded, ckpt = load_technique(tmp_path / "t.pt")
    assert loaded.kind == kind and loaded.cfg == CFG and ckpt["seed"] == 7 and ckpt["history"] == history
    assert loaded.resident_bytes() == t.resident_bytes()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        for k in range(1, CFG.groups + 1):
            torch.testing.assert_close(loaded.module(k)(x), t.module(k)(x), rtol=0, atol=0)


def test_an_old_checkpoint_is_refused_with_what_to_do(tmp_path):
    torch.save({"kind": "dynamic", "state_dict": {}}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match=r"old.pt: checkpoint format 1, this dyndnn reads format 2: retrain"):
        load_technique(tmp_path / "old.pt")
