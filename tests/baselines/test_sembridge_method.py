"""SemBridge as a method: registry and plug-in path, loss terms, ablations, SSM and DynM hooks."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from msrgb_bench.baselines import TrainingContext, create_method, get_method
from msrgb_bench.baselines.dkd import DKDTerm
from msrgb_bench.baselines.kd import KDTerm
from msrgb_bench.baselines.sembridge.method import SemBridge
from msrgb_bench.cli import main
from msrgb_bench.data.datamodule import normalizer
from msrgb_bench.data.paired import PairedMSRGBDataset
from msrgb_bench.models import Backbone, create_model
from msrgb_bench.models.pairs import parse_pair

MS_CHANS = 13
TERMS = ["ctkd", "distilvpr", "dkd", "kd", "logits", "lskd", "rkd"]
Factory = Callable[[str, int], Backbone]


def build(factory: Factory, name: str, pair: str = "M/S", **overrides: object) -> SemBridge:
    teacher_arch, student_arch = parse_pair(pair).teacher, parse_pair(pair).student
    distiller = create_method(
        name, factory(student_arch, 3), factory(teacher_arch, MS_CHANS), overrides=overrides
    )
    assert isinstance(distiller, SemBridge)
    return distiller


def test_sembridge_is_a_plugin_with_vanilla_kd_by_default(model_factory: Factory) -> None:
    spec = get_method("sembridge")
    assert spec.is_plugin and spec.default_term == "kd"
    plain = build(model_factory, "sembridge")
    assert isinstance(plain.term, KDTerm)
    assert plain.term.config.kd_weight == 0.4 and plain.config.ce_weight == 0.3
    assert plain.config.alignment_weight == pytest.approx(0.003)
    combined = build(model_factory, "dkd+sembridge")
    assert isinstance(combined.term, DKDTerm) and combined.method == "dkd+sembridge"
    assert combined.resolved_config()["term"]["method"] == "dkd"


@pytest.mark.parametrize("term", TERMS)
def test_every_method_plugs_into_sembridge(
    model_factory: Factory, paired_batch: dict[str, torch.Tensor], term: str
) -> None:
    distiller = build(model_factory, f"{term}+sembridge", pair="S/S")
    plain = create_method(term, model_factory("shufflenetv2", 3), model_factory("shufflenetv2", 13))
    losses = distiller.forward_train(paired_batch)
    expected = set(plain.forward_train(paired_batch)) | {"ska_tokens", "ska_embedding"}
    assert set(losses) == expected
    assert all(torch.isfinite(v) for v in losses.values())


def test_alignment_terms_are_weighted_like_the_released_code(
    model_factory: Factory, paired_batch: dict[str, torch.Tensor]
) -> None:
    torch.manual_seed(0)
    distiller = build(model_factory, "sembridge", pair="M/M")
    out = distiller.encode(paired_batch)
    losses = distiller.compute_losses(out)
    assert distiller.alignment is not None and out.teacher is not None
    raw = distiller.alignment(out.teacher, out.student)
    for name in ("ska_tokens", "ska_embedding"):
        assert losses[name].item() == pytest.approx(0.3 * 0.01 * raw[name].item(), rel=1e-6)
    kd = torch.nn.functional.kl_div(
        torch.log_softmax(out.student_logits / 3, 1),
        torch.softmax(out.teacher_logits / 3, 1),  # type: ignore[operator]
        reduction="batchmean",
    )
    assert losses["kd"].item() == pytest.approx(0.4 * kd.item(), rel=1e-3)  # float32 KL


@pytest.mark.parametrize("pair", ["S/S", "R/S", "S/M"])
def test_every_extra_parameter_gets_a_gradient(model_factory: Factory, pair: str) -> None:
    gen = torch.Generator().manual_seed(2)
    batch = {  # 64 x 64: 2 x 2 tokens (at 32 x 32 a single token makes every plan trivial)
        "image": torch.randn(4, 3, 64, 64, generator=gen),
        "teacher_image": torch.randn(4, MS_CHANS, 64, 64, generator=gen),
        "label": torch.tensor([0, 3, 1, 3]),
    }
    # Float64: the released CORAL scaling (1 / 4d^3) leaves the teacher plan's gradient near
    # 1e-26, which float32 rounds to zero; what matters for DDP is that it is connected.
    distiller = build(model_factory, "sembridge", pair=pair).double()
    batch = {k: v.double() if v.is_floating_point() else v for k, v in batch.items()}
    sum(distiller.forward_train(batch).values()).backward()  # type: ignore[union-attr]
    extra = distiller.extra_parameters()
    assert extra, "SKA adds trainable modules"
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in extra)
    assert all(p.grad is not None for p in distiller.student.parameters() if p.requires_grad)
    assert all(p.grad is None for p in distiller.teacher.parameters())


def test_ablation_switches_drop_their_terms(
    model_factory: Factory, paired_batch: dict[str, torch.Tensor]
) -> None:
    no_tokens = build(model_factory, "sembridge", token_alignment=False)
    assert set(no_tokens.forward_train(paired_batch)) == {"ce", "kd", "ska_embedding"}
    no_embedding = build(model_factory, "sembridge", embedding_alignment=False)
    assert set(no_embedding.forward_train(paired_batch)) == {"ce", "kd", "ska_tokens"}
    no_ska = build(model_factory, "sembridge", token_alignment=False, embedding_alignment=False)
    assert no_ska.alignment is None and no_ska.extra_parameters() == []
    assert set(no_ska.forward_train(paired_batch)) == {"ce", "kd"}
    assert build(model_factory, "sembridge", dynm=False).rematch_schedule(200) == []
    assert build(model_factory, "sembridge").rematch_schedule(200) == [30, 60, 95, 135]
    every = build(model_factory, "sembridge", dynm_count=None)
    assert every.rematch_schedule(200) == [30, 60, 95, 135, 180]
    ot = build(model_factory, "sembridge", ska_plan="ot")
    assert set(ot.forward_train(paired_batch)) == {"ce", "kd", "ska_tokens", "ska_embedding"}
    with pytest.raises(ValueError, match="ska_plan"):
        build(model_factory, "sembridge", ska_plan="sinkhorn")
    with pytest.raises(ValueError, match="dynm_e0 must be at least 1"):
        build(model_factory, "sembridge", dynm_e0=0)


def test_methods_without_a_matcher_refuse_one(model_factory: Factory) -> None:
    kd = create_method("kd", model_factory("mobilenetv2", 3), model_factory("mobilenetv2", 13))
    with pytest.raises(ValueError, match="does not use a matcher"):
        kd.use_matcher(torch.nn.Identity())


# --- hooks on a real paired dataset -------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sembridge-demo") / "data"
    result = CliRunner().invoke(
        main, ["build-dataset", "--out", str(out), "--size", "tiny", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    return out


def demo_distiller(demo: Path, **overrides: object) -> tuple[SemBridge, PairedMSRGBDataset]:
    dataset = PairedMSRGBDataset(demo, "train", seed=3)
    classes = dataset.num_classes
    torch.manual_seed(0)
    teacher = create_model("shufflenetv2", in_chans=len(dataset.teacher.bands), num_classes=classes)
    student = create_model("shufflenetv2", in_chans=3, num_classes=classes)
    # Freshly initialised networks give nearly constant logits (KL ties everywhere): use
    # batch-norm statistics of real chips and unit-scale linear layers so chips differ.
    with torch.no_grad():
        for model, part, modality in (
            (teacher, dataset.teacher, "ms"),
            (student, dataset.student, "rgb"),
        ):
            bands = part.bands if modality == "ms" else None
            for layer in model.modules():
                if isinstance(layer, torch.nn.Linear):
                    torch.nn.init.normal_(layer.weight, std=layer.in_features**-0.5 * 4)
            for layer in model.modules():
                if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
                    layer.momentum = None  # cumulative average: one pass sets the statistics
            model.train()(normalizer(demo, modality, bands)(part.read_images(range(len(part)))))
    distiller = create_method("sembridge", student, teacher, overrides=overrides)
    assert isinstance(distiller, SemBridge)
    return distiller, dataset


def context(dataset: PairedMSRGBDataset, epoch: int) -> TrainingContext:
    return TrainingContext(
        epoch=epoch, max_epochs=10, device=torch.device("cpu"), train_dataset=dataset
    )


def test_dynm_repairs_by_the_smallest_teacher_student_kl(demo: Path) -> None:
    distiller, dataset = demo_distiller(demo, ssm=False, dynm_e0=2, dynm_delta=3, dynm_mu=1)
    distiller.train()
    random_pairs = dataset.pairs
    distiller.on_fit_start(context(dataset, 0))  # ssm off: the random pairs stay
    assert dataset.pairs == random_pairs
    distiller.on_train_epoch_start(context(dataset, 1))  # not a re-matching epoch
    assert dataset.pairs == random_pairs and distiller.rematch_log == []
    distiller.on_train_epoch_start(context(dataset, 2))
    assert distiller.student.training, "the student is back in training mode"

    # Brute force: one chip at a time, KL(p_t || p_s) at T = 3 over every same-class teacher.
    ms_norm = normalizer(demo, "ms", dataset.teacher.bands)
    rgb_norm = normalizer(demo, "rgb")
    distiller.eval()
    with torch.no_grad():
        t_logits = [
            distiller.teacher(ms_norm(dataset.teacher[i]["image"][None].float()))[0].double()
            for i in range(len(dataset.teacher))
        ]
        s_logits = [
            distiller.student(rgb_norm(dataset.student[i]["image"][None].float()))[0].double()
            for i in range(len(dataset.student))
        ]
    t_labels, s_labels = dataset.teacher_labels_array, dataset.student_labels
    expected = []
    for s, label in zip(s_logits, s_labels, strict=True):
        log_p_s = torch.log_softmax(s / 3, 0)
        best, best_kl = -1, np.inf
        for j in np.flatnonzero(t_labels == label):
            log_p_t = torch.log_softmax(t_logits[j] / 3, 0)
            kl = float((log_p_t.exp() * (log_p_t - log_p_s)).sum())
            if kl < best_kl - 1e-9:
                best, best_kl = j, kl
        expected.append(dataset.teacher_ids[best])
    assert dataset.pairs == expected
    pair_classes = t_labels[[dataset.teacher_ids.tolist().index(p) for p in dataset.pairs]]
    assert (pair_classes == s_labels).all()
    (entry,) = distiller.rematch_log
    changed = np.mean(np.asarray(random_pairs, dtype=object) != np.asarray(expected, dtype=object))
    assert entry == {"epoch": 2.0, "changed": pytest.approx(changed)}


def test_ssm_without_a_matcher_is_a_clear_error(demo: Path) -> None:
    distiller, dataset = demo_distiller(demo)
    with pytest.raises(ValueError, match="train-matcher"):
        distiller.on_fit_start(context(dataset, 0))


# --- end to end through the CLI -----------------------------------------------------------------


@pytest.mark.slow
def test_matcher_teacher_sembridge_student_and_predictions(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from msrgb_bench.baselines.sembridge.matcher_training import load_matcher
    from msrgb_bench.engine import load_run
    from msrgb_bench.leaderboard.submission import read_submission, validate_submission
    from msrgb_bench.leaderboard.truth import GroundTruth

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fast = ["--batch-size", "32", "--accelerator", "cpu", "--quiet"]

    def invoke(*args: str) -> None:
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output

    matcher, teacher, student = tmp_path / "matcher", tmp_path / "teacher", tmp_path / "student"
    invoke("train-matcher", "--data", str(demo), "--arch", "shufflenetv2", "--epochs", "1",
           "--out", str(matcher), *fast)  # fmt: skip
    invoke("train-teacher", "--data", str(demo), "--arch", "shufflenetv2", "--epochs", "1",
           "--out", str(teacher), *fast)  # fmt: skip
    invoke("distill", "--data", str(demo), "--teacher", str(teacher), "--method", "dkd+sembridge",
           "--student", "mobilenetv2", "--matcher", str(matcher), "--epochs", "2",
           "--set", "dynm_e0=1", "--out", str(student), *fast)  # fmt: skip

    run = load_run(student, kind="student")
    _, info = load_matcher(matcher)
    assert run.config["method"] == "dkd+sembridge"
    assert run.config["pairing"] == f"SSM matcher run {info.config_hash}"
    assert run.config["method_config"]["config"]["dynm_e0"] == 1
    assert run.info["matcher_run"] == str(matcher.resolve())
    metrics = json.loads((student / "metrics.json").read_text())
    assert len(metrics) == 2 and {"train/ska_tokens", "train/dkd"} <= set(metrics[1])
    # Epoch 0 trains on the SSM pairs, which differ from the random ones; epoch 1 re-matched.
    assert 0.0 < metrics[0]["train/pairs_changed"] <= 1.0
    assert 0.0 <= metrics[1]["train/pairs_changed"] <= 1.0

    preds = tmp_path / "student.csv"
    invoke("predict", "--run", str(student), "--data", str(demo), "--out", str(preds))
    frame, meta = read_submission(preds)
    assert meta.method == "dkd+sembridge" and meta.modality == "rgb"
    validate_submission(frame, meta, GroundTruth.from_dataset(demo))

    no_matcher = CliRunner().invoke(
        main,
        ["distill", "--data", str(demo), "--teacher", str(teacher), "--method", "sembridge",
         "--student", "mobilenetv2", "--out", str(tmp_path / "sb"), "--epochs", "1", *fast],
    )  # fmt: skip
    assert no_matcher.exit_code != 0 and "train-matcher" in no_matcher.output
    assert not (tmp_path / "sb").exists() and not (tmp_path / ".sb.partial").exists()
    result = CliRunner().invoke(
        main,
        ["distill", "--data", str(demo), "--teacher", str(teacher), "--method", "kd",
         "--student", "mobilenetv2", "--matcher", str(matcher), "--out", str(tmp_path / "kd"),
         "--epochs", "1", *fast],
    )  # fmt: skip
    assert result.exit_code != 0 and "does not use a matcher" in result.output
