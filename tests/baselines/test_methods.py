"""Every method on every teacher/student pair, the presets, the registry and its plug-in path."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import FrozenInstanceError, dataclass
from typing import Self

import pytest
import torch

from msrgb_bench.baselines import (
    PRESETS,
    Distiller,
    MethodConfig,
    StepOutputs,
    create_method,
    get_method,
    list_methods,
    losses,
)
from msrgb_bench.baselines.ctkd import CTKDTerm
from msrgb_bench.baselines.registry import METHODS, MethodSpec
from msrgb_bench.errors import UnknownNameError
from msrgb_bench.models import Backbone, Features
from msrgb_bench.models.pairs import PAPER_PAIRS, parse_pair

MS_CHANS = 13  # the teacher input of the ``paired_batch`` fixture
METHOD_NAMES = ["ctkd", "distilvpr", "dkd", "kd", "logits", "lskd", "none", "rkd", "sembridge"]
Factory = Callable[[str, int], Backbone]


def build(factory: Factory, method: str, pair: str, preset: str = "paper", **overrides: object):
    teacher_arch, student_arch = parse_pair(pair).teacher, parse_pair(pair).student
    return create_method(
        method,
        factory(student_arch, 3),
        factory(teacher_arch, MS_CHANS),
        preset=preset,
        overrides=overrides,
    )


def test_the_methods_are_registered_with_both_presets() -> None:
    assert list_methods() == METHOD_NAMES
    for name in METHOD_NAMES:
        presets = get_method(name).config_cls.presets()
        assert tuple(presets) == PRESETS
        with pytest.raises(FrozenInstanceError):
            presets["paper"].ce_weight = 2.0  # type: ignore[misc]


@pytest.mark.parametrize("method", METHOD_NAMES)
@pytest.mark.parametrize("pair", PAPER_PAIRS)
def test_method_on_pair_trains_student_and_extras_only(
    model_factory: Factory, paired_batch: dict[str, torch.Tensor], method: str, pair: str
) -> None:
    distiller = build(model_factory, method, pair)
    distiller.train()
    distiller.epoch = 6  # past every warm-up, so every term is active
    teacher_state = {k: v.clone() for k, v in distiller.teacher.state_dict().items()}

    terms = distiller.forward_train(paired_batch)
    total = sum(terms.values())
    assert isinstance(total, torch.Tensor) and torch.isfinite(total)
    assert all(torch.isfinite(v) and v.ndim == 0 for v in terms.values())
    total.backward()

    student_grads = [p.grad for p in distiller.student.parameters()]
    assert all(g is not None for g in student_grads)
    assert sum(float(g.abs().sum()) for g in student_grads if g is not None) > 0
    for p in distiller.extra_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()
    assert all(p.grad is None and not p.requires_grad for p in distiller.teacher.parameters())
    assert not distiller.teacher.training
    assert all(m.training for m in distiller.student.modules())
    for key, value in distiller.teacher.state_dict().items():  # BN statistics untouched
        assert torch.equal(value, teacher_state[key]), key


def test_every_distillation_term_gives_the_student_a_gradient(
    model_factory: Factory, paired_batch: dict[str, torch.Tensor]
) -> None:
    for method in METHOD_NAMES:
        if method == "none":
            continue
        distiller = build(model_factory, method, "M/S", ce_weight=0.0)
        distiller.epoch = 6
        terms = distiller.forward_train(paired_batch)
        assert "ce" not in terms
        sum(terms.values()).backward()
        grad = sum(
            float(p.grad.abs().sum()) for p in distiller.student.parameters() if p.grad is not None
        )
        assert grad > 0, method


def test_rkd_alone_trains_the_student(
    model_factory: Factory, paired_batch: dict[str, torch.Tensor]
) -> None:
    distiller = build(model_factory, "rkd", "R/M", ce_weight=0.0)
    before = [p.detach().clone() for p in distiller.student.parameters()]
    optimiser = torch.optim.SGD(distiller.trainable_parameters(), lr=0.1)
    sum(distiller.forward_train(paired_batch).values()).backward()
    optimiser.step()
    changed = [
        not torch.equal(b, p) for b, p in zip(before, distiller.student.parameters(), strict=True)
    ]
    assert sum(changed) > len(changed) // 2


def test_none_never_runs_the_teacher(model_factory: Factory) -> None:
    distiller = build(model_factory, "none", "S/S")
    assert not distiller.needs_teacher
    terms = distiller.forward_train(
        {"image": torch.randn(2, 3, 32, 32), "label": torch.tensor([1, 2])}
    )
    assert list(terms) == ["ce"]


def test_ctkd_temperature_exists_moves_and_is_adversarial(
    model_factory: Factory, paired_batch: dict[str, torch.Tensor]
) -> None:
    distiller = build(model_factory, "ctkd", "M/S")
    term = distiller.term
    assert isinstance(term, CTKDTerm)
    assert [id(p) for p in distiller.extra_parameters()] == [id(term.temperature_logit)]
    assert float(distiller.metrics()["temperature"]) == pytest.approx(1 + 20 / (1 + torch.e**-1))

    # Epoch 0: lambda = 0, the temperature receives an exactly zero gradient.
    distiller.epoch = 0
    sum(distiller.forward_train(paired_batch).values()).backward()
    assert term.temperature_logit.grad is not None
    assert float(term.temperature_logit.grad) == 0.0

    # Epoch 5 (paper preset: lambda = -1): the gradient is minus the KD loss's gradient.
    distiller.zero_grad()
    distiller.epoch = 5
    out = distiller.encode(paired_batch)
    sum(distiller.compute_losses(out).values()).backward()
    reversed_grad = float(term.temperature_logit.grad)
    tau = term.temperature(reversal=1.0)
    plain = 0.4 * losses.kd_kl_div(out.student_logits.detach(), out.teacher_logits, tau, False)
    (plain_grad,) = torch.autograd.grad(plain, term.temperature_logit)
    assert reversed_grad == pytest.approx(-float(plain_grad), rel=1e-4)
    assert reversed_grad != 0.0

    before = float(term.temperature_logit.detach())
    torch.optim.Adam(distiller.trainable_parameters(), lr=0.01).step()
    assert float(term.temperature_logit.detach()) != pytest.approx(before, abs=1e-4)


def test_dkd_warmup_scales_the_loss() -> None:
    cfg = get_method("dkd").config_cls.preset("paper")
    assert [cfg.warmup_factor(e) for e in (0, 9, 19, 50)] == pytest.approx([0.05, 0.5, 1, 1])


# --- terms on fixed outputs: preset weights wired as documented --------------------------------


def fixed_outputs(epoch: int = 30) -> StepOutputs:
    gen = torch.Generator().manual_seed(3)
    emb_s, emb_t = torch.randn(4, 512, generator=gen), torch.randn(4, 512, generator=gen)
    tokens = torch.zeros(4, 1, 512)
    return StepOutputs(
        student=Features(tokens, emb_s),
        student_logits=torch.randn(4, 5, generator=gen),
        labels=torch.tensor([0, 1, 4, 4]),
        epoch=epoch,
        teacher=Features(tokens, emb_t),
        teacher_logits=3 * torch.randn(4, 5, generator=gen),
    )


def term_losses(method: str, preset: str, out: StepOutputs) -> dict[str, torch.Tensor]:
    spec = get_method(method)
    assert spec.term_cls is not None
    return spec.term_cls(spec.config_cls.preset(preset))(out)


@pytest.mark.parametrize("preset", PRESETS)
def test_logit_terms_use_their_preset_weights(preset: str) -> None:
    out = fixed_outputs()
    s, t, y = out.student_logits, out.teacher_logits, out.labels
    assert t is not None
    paper = preset == "paper"
    expected = {
        "kd": {
            "kd": (0.4 * losses.kd_kl_div(s, t, 3.0, False))
            if paper
            else 0.9 * losses.kd_kl_div(s, t, 4.0)
        },
        "logits": {
            "logit_mse": 0.4 * 0.01 * losses.logit_mse(s, t, "mean")
            if paper
            else 0.5 * losses.logit_mse(s, t, "sum")
        },
        "dkd": {"dkd": (0.4 if paper else 1.0) * losses.dkd_loss(s, t, y, 1.0, 8.0, 4.0)},
        "lskd": {
            "kd": (0.4 if paper else 9.0)
            * losses.kd_kl_div(
                losses.standardize_logits(s),
                losses.standardize_logits(t),
                3.0 if paper else 2.0,
            )
        },
    }
    for method, values in expected.items():
        actual = term_losses(method, preset, out)
        assert set(actual) == set(values), method
        for key, value in values.items():
            torch.testing.assert_close(actual[key], value, msg=f"{method}.{key}")


@pytest.mark.parametrize("preset", PRESETS)
def test_embedding_terms_use_their_preset_weights(preset: str) -> None:
    out = fixed_outputs()
    assert out.teacher is not None
    es, et = out.student.embedding, out.teacher.embedding
    scale = 0.04 if preset == "paper" else 1.0
    rkd = term_losses("rkd", preset, out)
    torch.testing.assert_close(rkd["rkd_distance"], scale * 25 * losses.rkd_distance_loss(es, et))
    torch.testing.assert_close(rkd["rkd_angle"], scale * 50 * losses.rkd_angle_loss(es, et))

    vpr = term_losses("distilvpr", preset, out)
    kd_weight, teacher_side = (0.4, 0.1) if preset == "paper" else (1.0, 0.0)
    torch.testing.assert_close(vpr["rkdg"], kd_weight * 10 * losses.rkdg_loss(es, et, 0.1))
    cross = losses.cross_agent_losses(es, et, 0.1, 0.1, teacher_side)
    for name, value in cross.items():
        torch.testing.assert_close(vpr[f"cross_{name}"], kd_weight * value)


def test_ctkd_term_on_fixed_outputs() -> None:
    out = fixed_outputs(epoch=10)
    assert out.teacher_logits is not None
    tau = 1 + 20 * torch.sigmoid(torch.tensor(1.0))
    paper = term_losses("ctkd", "paper", out)["kd"]
    torch.testing.assert_close(
        paper, 0.4 * losses.kd_kl_div(out.student_logits, out.teacher_logits, tau, False)
    )
    original = term_losses("ctkd", "original", out)["kd"]
    torch.testing.assert_close(
        original, 0.9 * losses.kd_kl_div(out.student_logits, out.teacher_logits, tau, True)
    )


# --- registry --------------------------------------------------------------------------------


def test_unknown_names_are_refused(model_factory: Factory) -> None:
    with pytest.raises(UnknownNameError, match="unknown method 'fitnet'"):
        build(model_factory, "fitnet", "S/S")
    with pytest.raises(UnknownNameError, match="unknown preset"):
        build(model_factory, "kd", "S/S", preset="cifar")
    with pytest.raises(UnknownNameError, match="unknown method setting 'temprature'"):
        build(model_factory, "kd", "S/S", temprature=2.0)
    with pytest.raises(ValueError, match="not a plug-in"):
        build(model_factory, "kd+dkd", "S/S")


def test_overrides_and_resolved_config(model_factory: Factory) -> None:
    distiller = build(model_factory, "kd", "S/S", preset="original", temperature=2.5)
    config = distiller.resolved_config()
    assert json.loads(json.dumps(config)) == config
    assert config["method"] == "kd" and config["preset"] == "original"
    assert config["config"]["temperature"] == 2.5 and config["config"]["kd_weight"] == 0.9
    assert config["term"] == {"method": "kd", "config": config["config"]}


def test_student_and_teacher_must_agree_on_classes(model_factory: Factory) -> None:
    from msrgb_bench.models import create_model

    with pytest.raises(ValueError, match="classes"):
        create_method("kd", create_model("shufflenetv2", 3, 3), model_factory("shufflenetv2", 13))


@dataclass(frozen=True, kw_only=True)
class ToyPluginConfig(MethodConfig):
    align_weight: float

    @classmethod
    def presets(cls) -> dict[str, Self]:
        return {
            "paper": cls(ce_weight=0.3, align_weight=0.5),
            "original": cls(ce_weight=1.0, align_weight=1.0),
        }


class ToyPlugin(Distiller):
    """A plug-in with its own module and loss, as SemBridge will be."""

    method_name = "toyplug"

    def __init__(self, student, teacher, config, term=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(student, teacher, config, term)
        self.align = torch.nn.Linear(teacher.token_dim, student.token_dim, bias=False)

    @property
    def needs_teacher(self) -> bool:
        return True

    def compute_losses(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        terms = super().compute_losses(out)
        teacher, _ = out.require_teacher()
        diff = self.align(teacher.tokens).mean(1) - out.student.tokens.mean(1)
        terms["align"] = self.config.align_weight * diff.pow(2).mean()
        return terms


@pytest.fixture
def toy_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = MethodSpec("toyplug", ToyPluginConfig, None, ToyPlugin, default_term="kd")
    monkeypatch.setitem(METHODS._items, "toyplug", spec)


@pytest.mark.usefixtures("toy_plugin")
def test_plugin_combines_with_any_term(
    model_factory: Factory, paired_batch: dict[str, torch.Tensor]
) -> None:
    combined = build(model_factory, "dkd+toyplug", "R/S", temperature=2.0)
    assert isinstance(combined, ToyPlugin)
    config = combined.resolved_config()
    assert config["method"] == "dkd+toyplug"
    assert config["term"]["method"] == "dkd" and config["term"]["config"]["temperature"] == 2.0
    assert config["config"] == {"ce_weight": 0.3, "align_weight": 0.5}
    combined.epoch = 25
    terms = combined.forward_train(paired_batch)
    assert set(terms) == {"ce", "dkd", "align"}
    sum(terms.values()).backward()
    (align,) = combined.extra_parameters()
    assert align.grad is not None and float(align.grad.abs().sum()) > 0

    alone = build(model_factory, "toyplug", "R/S")
    assert alone.term is not None and alone.term.method_name == "kd"
    assert set(alone.forward_train(paired_batch)) == {"ce", "kd", "align"}
