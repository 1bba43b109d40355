"""The invariants that make the method true (docs/design.md, Contracts: Model)."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
import torch
from helpers import TINY

from dyndnn.config import TrainConfig
from dyndnn.learn.export import onnx_parity, to_onnx_bytes, to_torchscript, torchscript_parity
from dyndnn.learn.model import LAYOUTS, GroupedAlexNet, ModelConfig
from dyndnn.learn.train import fit_stage

VARIANTS = list(itertools.product(["nested", "grouped"], ["sum", "per_config", "ensemble"]))
G = 4


def tiny(connectivity, head, seed=0, **kwargs):
    torch.manual_seed(seed)
    return GroupedAlexNet(ModelConfig(groups=G, connectivity=connectivity, head=head, **TINY, **kwargs)).eval()


def randomise_groups_above(model, k):
    with torch.no_grad():
        for j in range(k, G):
            for m in model.group_modules(j):
                for name, t in [*m.named_parameters(), *m.named_buffers()]:
                    if name == "running_var":
                        t.copy_(torch.rand_like(t) + 0.5)
                    elif name != "num_batches_tracked":
                        t.copy_(torch.randn_like(t))


@pytest.mark.parametrize("connectivity,head", VARIANTS)
def test_k_group_output_ignores_later_groups(connectivity, head):
    model = tiny(connectivity, head)
    x = torch.randn(8, 3, 32, 32)
    for k in range(1, G):
        with model.at_groups(k):
            before = model(x)
        randomise_groups_above(model, k)
        with model.at_groups(k):
            assert torch.equal(before, model(x)), f"k={k}: output changed when groups > {k} changed"
        with model.at_groups(G):
            assert not torch.allclose(model(x), before), "the full model must depend on the later groups"


@pytest.fixture
def bf16_capable(monkeypatch):
    """Let `precision: bf16` run on any CPU (autocast emulates bf16 where it is not native)."""
    monkeypatch.setattr("dyndnn.learn.recipe.cpu_has_native_bf16", lambda *a: True)


@pytest.mark.parametrize(
    "connectivity,head,frozen_dropout,precision",
    [(c, h, 0.0, "fp32") for c, h in VARIANTS] + [("nested", "per_config", 0.3, "fp32")] + [(c, h, 0.0, "bf16") for c, h in VARIANTS],
)
def test_training_a_later_stage_keeps_earlier_predictions_bit_identical(connectivity, head, frozen_dropout, precision, bf16_capable):
    model = tiny(connectivity, head, frozen_dropout=frozen_dropout)
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, 10, (64,))
    probe = torch.randn(16, 3, 32, 32)
    cfg = TrainConfig(epochs=1, batch_size=16, lr=0.1, schedule="constant", precision=precision, distill=0.0)
    for k in range(1, G + 1):
        snapshots = {}
        for j in range(1, k):
            with model.at_groups(j):
                snapshots[j] = model(probe)
        group_k_before = [p.detach().clone() for p in model.group_parameters(k - 1)]
        fit_stage(model, k, x, y, cfg, seed=0)
        for j, before in snapshots.items():
            with model.at_groups(j):
                assert torch.equal(before, model(probe)), f"stage {k} changed the {j}-group predictions"
        changed = any(not torch.equal(a, b) for a, b in zip(group_k_before, model.group_parameters(k - 1)))
        assert changed, f"stage {k} did not train group {k}"
        assert all(p.dtype == torch.float32 for p in model.parameters()), "weights stay fp32 under autocast"
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    for k in range(1, G + 1):  # the fp32 export path of a model trained in `precision`
        with model.at_groups(k):
            assert onnx_parity(to_onnx_bytes(model.materialize(k), opset=13, ir_version=7), model, images) <= 1e-4


def test_stage_optimises_only_group_k_and_freezes_bn_statistics():
    model = tiny("nested", "sum").train()
    params = model.prepare_stage(3)
    assert {id(p) for p in params} == {id(p) for p in model.group_parameters(2)}
    assert all(not p.requires_grad for j in (0, 1) for p in model.group_parameters(j))
    model.train()  # must not unfreeze BN of groups 1..2
    assert not model.bns[0][0].training and not model.bns[0][1].training and model.bns[0][2].training
    stats = model.bns[2][1].running_mean.clone()
    model(torch.randn(4, 3, 32, 32))
    assert torch.equal(stats, model.bns[2][1].running_mean)


def test_frozen_groups_build_no_autograd_graph():
    model = tiny("nested", "sum").train()
    model.prepare_stage(3)
    seen = {}
    hooks = [model.convs[2][j].register_forward_hook(lambda m, i, o, j=j: seen.__setitem__(j, o.requires_grad)) for j in range(3)]
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    for h in hooks:
        h.remove()
    assert seen == {0: False, 1: False, 2: True}


@pytest.mark.parametrize("connectivity,head,layout", [(c, h, lay) for c, h in VARIANTS for lay in LAYOUTS])
def test_materialize_and_onnx_match_dynamic_model(connectivity, head, layout):
    model = tiny(connectivity, head, seed=1)
    x = torch.randn(4, 3, 32, 32)
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    for k in range(1, G + 1):
        static = model.materialize(k, layout)
        with model.at_groups(k):
            torch.testing.assert_close(static(x), model(x), rtol=0, atol=1e-5)
            assert onnx_parity(to_onnx_bytes(static, opset=13, ir_version=7), model, images) <= 1e-4
            assert torchscript_parity(to_torchscript(static), model, images) <= 1e-4
        if connectivity == "grouped" and k > 1:
            assert {m.groups for m in static.features if isinstance(m, torch.nn.Conv2d)} == {1, k}


def test_switching_is_validated_and_restored():
    model = tiny("nested", "sum")
    with pytest.raises(ValueError, match="active groups"):
        model.set_active_groups(G + 1)
    with model.at_groups(2):
        assert model.active_groups == 2
    assert model.active_groups == G


def test_model_config_rejects_widths_not_divisible_by_groups():
    with pytest.raises(ValueError, match="not divisible by groups=5"):
        ModelConfig(groups=5)


def test_frozen_dropout_acts_only_on_frozen_features_read_while_training():
    x = torch.randn(8, 3, 32, 32)

    def two_training_passes(frozen_dropout, stage):
        model = tiny("nested", "per_config", dropout=0.0, frozen_dropout=frozen_dropout)
        with model.at_groups(G):
            reference = model(x)
        state = {n: t.clone() for n, t in model.state_dict().items()}
        model.train()
        model.prepare_stage(stage)
        with torch.no_grad():
            outs = [model(x) for _ in range(2)]
        model.load_state_dict(state)  # undo the BN statistics the training passes updated
        model.eval()
        with model.at_groups(G):
            assert torch.equal(model(x), reference), "frozen_dropout must not act at inference"
        return outs

    a, b = two_training_passes(0.5, stage=3)
    assert not torch.equal(a, b), "stage 3 must read randomly dropped frozen features"
    a, b = two_training_passes(0.0, stage=3)
    assert torch.equal(a, b), "without frozen_dropout (and FC dropout 0) a training pass is deterministic"
    a, b = two_training_passes(0.5, stage=1)
    assert torch.equal(a, b), "stage 1 has no frozen groups: nothing to drop"


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_distilled_stages_keep_the_invariant_and_leave_the_teacher_untouched(precision, bf16_capable):
    """KD from a dense teacher changes what group k learns, never the earlier groups or the teacher
    (teacher and student in the same precision and layout)."""
    from dyndnn.learn.slimmable import SlimmableAlexNet

    torch.manual_seed(1)
    teacher = SlimmableAlexNet(ModelConfig(groups=G, **TINY)).train()  # train mode on purpose: the loss must switch it to eval
    teacher_state = {n: t.clone() for n, t in teacher.state_dict().items()}
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, 10, (64,))
    probe = torch.randn(16, 3, 32, 32)
    plain, kd = tiny("nested", "per_config"), tiny("nested", "per_config")
    cfg = TrainConfig(epochs=1, batch_size=16, lr=0.1, schedule="constant", precision=precision, distill=0.0)
    with pytest.raises(ValueError, match="needs a teacher"):
        fit_stage(tiny("nested", "per_config"), 1, x, y, replace(cfg, distill=0.5), seed=0)
    for k in range(1, G + 1):
        snapshots = {}
        for j in range(1, k):
            with kd.at_groups(j):
                snapshots[j] = kd(probe)
        fit_stage(plain, k, x, y, cfg, seed=0)
        fit_stage(kd, k, x, y, replace(cfg, distill=0.5), seed=0, teacher=teacher)
        for j, before in snapshots.items():
            with kd.at_groups(j):
                assert torch.equal(before, kd(probe)), f"distilled stage {k} changed the {j}-group predictions"
        with kd.at_groups(k), plain.at_groups(k):
            assert not torch.allclose(kd(probe), plain(probe)), f"stage {k}: distillation made no difference"
    assert all(torch.equal(t, teacher.state_dict()[n]) for n, t in teacher_state.items()), "training changed the teacher"


@pytest.mark.parametrize("head", ["sum", "per_config", "ensemble"])
def test_group_one_is_the_same_network_under_every_connectivity(head):
    """Group 1 reads only itself: its modules carry over between connectivities unchanged
    (what `benchmarks/later_groups.py --variants grouped` relies on)."""
    nested, grouped = tiny("nested", head, seed=0), tiny("grouped", head, seed=1)
    for mine, theirs in zip(grouped.group_modules(0), nested.group_modules(0)):
        mine.load_state_dict(theirs.state_dict())
    x = torch.randn(4, 3, 32, 32)
    nested.set_active_groups(1)
    grouped.set_active_groups(1)
    assert torch.equal(nested(x), grouped(x))
    nested.set_active_groups(2)
    grouped.set_active_groups(2)
    assert not torch.allclose(nested(x), grouped(x))  # group 2 differs: it reads group 1 only when nested


def test_a_stage_with_its_own_objective_trains_its_extra_parameters_and_keeps_the_invariant():
    """`fit_stage(loss_fn=..., extra_params=...)` (what `benchmarks/later_groups.py --variants
    aux` trains with): the extra parameters learn, the earlier groups' predictions stay."""
    model = tiny("nested", "per_config")
    x = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, 10, (32,))
    probe = torch.randn(8, 3, 32, 32)
    cfg = TrainConfig(epochs=1, batch_size=16, lr=0.1, schedule="constant", distill=0.0)
    fit_stage(model, 1, x, y, cfg, seed=0)
    with model.at_groups(1):
        before = model(probe)
    aux = torch.nn.Linear(model.heads[0].in_features, 10)
    aux_before = aux.weight.detach().clone()
    calls = []

    def loss_fn(net, xb, yb, cfg, soft):
        calls.append(len(xb))
        hs = net.forward_features(xb)
        logits = net.heads[len(hs) - 1](torch.cat(hs, dim=1))
        loss = torch.nn.functional.cross_entropy(logits, yb) + torch.nn.functional.cross_entropy(aux(hs[-1]), yb)
        return loss, logits

    fit_stage(model, 2, x, y, cfg, seed=0, loss_fn=loss_fn, extra_params=aux.parameters())
    assert calls == [16, 16], "the stage must train with the objective it was given"
    assert not torch.equal(aux.weight, aux_before), "the extra parameters must be optimised"
    with model.at_groups(1):
        assert torch.equal(before, model(probe)), "stage 2 changed the 1-group predictions"


@pytest.mark.parametrize("connectivity", ["nested", "grouped"])
def test_an_ensemble_stage_trains_group_k_as_a_classifier_of_its_own_and_configurations_average(connectivity):
    """head `ensemble`: stage k's objective sees head k on group k's features alone, and
    configuration k predicts with the mean of heads 1..k on their own groups' features."""
    model = tiny(connectivity, "ensemble")
    x = torch.randn(4, 3, 32, 32)
    for k in range(1, G + 1):
        with model.at_groups(k):
            hs = model.forward_features(x)
            own = [model.heads[j](hs[j]) for j in range(k)]
            torch.testing.assert_close(model(x), sum(own) / k, rtol=0, atol=1e-6)
            torch.testing.assert_close(model.stage_logits(x), own[-1], rtol=0, atol=0)
    seen = []
    model.stage_logits = lambda xb: seen.append(len(xb)) or GroupedAlexNet.stage_logits(model, xb)
    images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8)
    fit_stage(model, 1, images, torch.randint(0, 10, (32,)), TrainConfig(epochs=1, batch_size=16, schedule="constant", distill=0.0), seed=0)
    assert seen == [16, 16], "the stage must learn from stage_logits"


def test_a_grouped_stage_computes_only_the_group_it_trains():
    """grouped + ensemble: stage k's logits need group k alone (it reads no other group), so the
    frozen groups are not run, and the logits equal those of the full forward bit for bit, in
    training mode too; nested groups read the groups before them and refuse to skip any."""
    model = tiny("grouped", "ensemble")
    x = torch.randn(4, 3, 32, 32)
    ran = []
    for layer in (*model.convs, *model.fcs):
        for j, m in enumerate(layer):
            m.register_forward_hook(lambda _m, _i, _o, j=j: ran.append(j))
    model.train()
    for k in range(1, G + 1):
        model.prepare_stage(k)
        torch.manual_seed(0)
        full = model.heads[k - 1](model.forward_features(x)[-1])
        ran.clear()
        torch.manual_seed(0)
        torch.testing.assert_close(model.stage_logits(x), full, rtol=0, atol=0)
        assert set(ran) == {k - 1}, f"stage {k} ran groups {sorted(set(ran))}"
    with pytest.raises(ValueError, match="nested groups read the groups before them"):
        tiny("nested", "ensemble").forward_features(x, first=1)
