"""The Lightning modules: validation metrics, teacher training, distillation and its hooks."""

from __future__ import annotations

import math
from typing import Any

import lightning as L  # noqa: N812
import numpy as np
import pytest
import torch
from engine_fixtures import MS_CHANS, NUM_CLASSES, TinyDataModule, TinyPaired

from msrgb_bench.baselines import Distiller, StepOutputs, TrainingContext, create_method
from msrgb_bench.engine.config import TrainerConfig
from msrgb_bench.engine.modules import ClassifierModule, DistillationModule, ValidationMetrics
from msrgb_bench.engine.prediction import predictions_frame
from msrgb_bench.engine.trainer import build_trainer, parse_devices, per_device_batch_size
from msrgb_bench.models import create_model


def fit(module: L.LightningModule, datamodule: L.LightningDataModule, tmp_path, epochs: int = 2):  # type: ignore[no-untyped-def]
    config = TrainerConfig(epochs=epochs, accelerator="cpu", devices="1")
    trainer = build_trainer(config, tmp_path, progress=False)
    trainer.fit(module, datamodule=datamodule)
    return trainer


def test_single_label_validation_metrics() -> None:
    metrics = ValidationMetrics(4, multilabel=False)
    logits = torch.tensor([[2.0, 1.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    labels = torch.tensor([0, 2, 3])
    metrics.update(logits, {"label": labels})
    z = logits.numpy().astype(np.float64)
    log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
    expected_loss = -log_p[np.arange(3), labels.numpy()].mean()
    assert float(metrics.acc.compute()) == pytest.approx(2 / 3)
    assert float(metrics.loss.compute()) == pytest.approx(expected_loss, rel=1e-5)


def test_multilabel_validation_thresholds_sigmoid_scores_instead_of_argmax() -> None:
    metrics = ValidationMetrics(4, multilabel=True)
    logits = torch.tensor([[2.0, 1.0, -1.0, -3.0], [0.4, -0.2, -1.0, -1.0], [0.6, -2.0, -2.0, 0.3]])
    labels = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 1.0]])
    metrics.update(logits, {"labels": labels, "label": torch.tensor([0, 0, 0])})
    # sigmoid >= 0.5 <=> logit >= 0: rows 1 and 3 match exactly; an argmax would match none, and
    # the released code's "raw logit > 0.5" rule only row 1.
    assert float(metrics.acc.compute()) == pytest.approx(2 / 3)
    z, y = logits.numpy().astype(np.float64), labels.numpy()
    bce = np.mean(np.log1p(np.exp(-z)) * y + np.log1p(np.exp(z)) * (1 - y))
    assert float(metrics.loss.compute()) == pytest.approx(bce, rel=1e-5)


def test_predictions_frame() -> None:
    prob = np.array([[0.7, 0.2, 0.6], [0.1, 0.5, 0.3]])
    single = predictions_frame(["a", "b"], prob, ["x", "y", "z"], multilabel=False)
    assert list(single.columns) == ["sample_id", "pred", "prob_x", "prob_y", "prob_z"]
    assert single["pred"].tolist() == [0, 1]
    multi = predictions_frame(["a", "b"], prob, ["x", "y", "z"], multilabel=True)
    assert multi[["pred_x", "pred_y", "pred_z"]].to_numpy().tolist() == [[1, 0, 1], [0, 1, 0]]


def test_trainer_settings() -> None:
    assert parse_devices("auto") == "auto"
    assert parse_devices("2") == 2
    assert parse_devices("0,1") == [0, 1]
    assert per_device_batch_size(256, 2) == 128
    with pytest.raises(ValueError, match="evenly"):
        per_device_batch_size(10, 4)


@pytest.mark.parametrize("multilabel", [False, True])
def test_teacher_module_trains_with_ce_or_bce(tmp_path, multilabel: bool) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = create_model("shufflenetv2", in_chans=MS_CHANS, num_classes=NUM_CLASSES)
    module = ClassifierModule(model, multilabel=multilabel, lr=1e-2)
    datamodule = TinyDataModule(teacher=True, multilabel=multilabel)
    batch = next(iter(datamodule.train_dataloader()))
    logits = model(batch["image"])
    if multilabel:
        expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["labels"])
    else:
        expected = torch.nn.functional.cross_entropy(logits, batch["label"])
    torch.testing.assert_close(module.training_step(batch, 0), expected)

    before = [p.detach().clone() for p in model.parameters()]
    trainer = fit(module, datamodule, tmp_path)
    metrics = trainer.callback_metrics
    assert {"train/loss", "val/acc", "val/loss"} <= set(metrics)
    assert all(math.isfinite(float(v)) for v in metrics.values())
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


class RePairing(Distiller):
    """Swaps every pair before epoch 1 and records what each step saw."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.contexts: list[TrainingContext] = []
        self.seen: dict[int, set[str]] = {}
        self.teacher_modes: set[bool] = set()

    def on_fit_start(self, context: TrainingContext) -> None:
        self.contexts.append(context)

    def on_train_epoch_start(self, context: TrainingContext) -> None:
        super().on_train_epoch_start(context)
        self.contexts.append(context)
        dataset = context.train_dataset
        assert isinstance(dataset, TinyPaired)
        if context.epoch == 1:  # partner i + n: same class, other teacher image
            dataset.set_pairs([i + len(dataset) for i in range(len(dataset))])

    def compute_losses(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        self.seen.setdefault(out.epoch, set()).update(out.batch["teacher_sample_id"])
        self.teacher_modes.add(self.teacher.training)
        return super().compute_losses(out)


def test_distillation_module_trains_student_only_and_runs_the_hooks(tmp_path) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    student = create_model("shufflenetv2", in_chans=3, num_classes=NUM_CLASSES)
    teacher = create_model("mobilenetv2", in_chans=MS_CHANS, num_classes=NUM_CLASSES)
    kd = create_method("kd", student, teacher)
    distiller = RePairing(student, teacher, kd.config, kd.term)
    module = DistillationModule(distiller, lr=1e-2)
    teacher_state = {k: v.clone() for k, v in teacher.state_dict().items()}
    student_before = [p.detach().clone() for p in student.parameters()]

    datamodule = TinyDataModule(n_train=8)
    trainer = fit(module, datamodule, tmp_path)

    assert [c.epoch for c in distiller.contexts] == [0, 0, 1]
    assert all(c.train_dataset is datamodule.train_dataset for c in distiller.contexts)
    assert distiller.contexts[-1].world_size == 1 and distiller.contexts[-1].max_epochs == 2
    assert distiller.contexts[-1].broadcast("x") == "x"
    assert distiller.seen[0] == {f"ms-{i}" for i in range(8)}
    assert distiller.seen[1] == {f"ms-{i + 8}" for i in range(8)}
    assert distiller.teacher_modes == {False}
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, teacher_state[key]), key
    assert all(not p.requires_grad for p in teacher.parameters())
    after = student.parameters()
    moved = [not torch.equal(b, p) for b, p in zip(student_before, after, strict=True)]
    assert sum(moved) > len(moved) // 2
    assert {"train/ce", "train/kd", "train/loss", "val/acc", "val/loss"} <= set(
        trainer.callback_metrics
    )


def test_checkpoint_state_holds_student_and_extras_not_teacher() -> None:
    student = create_model("shufflenetv2", in_chans=3, num_classes=NUM_CLASSES)
    teacher = create_model("shufflenetv2", in_chans=MS_CHANS, num_classes=NUM_CLASSES)
    module = DistillationModule(create_method("ctkd", student, teacher), lr=1e-3)
    state = module.checkpoint_state()
    assert set(state) == {f"model.{k}" for k in student.state_dict()} | {
        "extra.term.temperature_logit"
    }
    params = {id(p) for p in module.trainable()}
    assert params == {id(p) for p in student.parameters()} | {
        id(module.distiller.term.temperature_logit)  # type: ignore[union-attr]
    }


def _first_batch_norm_input_mean(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    norm = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    seen: list[torch.Tensor] = []
    handle = norm.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    model.eval()
    with torch.no_grad():
        model(images)
    handle.remove()
    return seen[0].mean(dim=(0, 2, 3))


def test_precise_batch_norm_recomputes_the_trained_network_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    teacher = create_model("mobilenetv2", in_chans=MS_CHANS, num_classes=NUM_CLASSES)
    student = create_model("mobilenetv2", in_chans=3, num_classes=NUM_CLASSES)
    teacher_state = {k: v.clone() for k, v in teacher.state_dict().items()}
    module = DistillationModule(create_method("kd", student, teacher), lr=1e-3)
    datamodule = TinyDataModule(n_train=16, batch_size=4)  # 4 equal batches, all averaged
    config = TrainerConfig(epochs=2, accelerator="cpu", devices="1", precise_bn_batches=4)
    build_trainer(config, tmp_path, progress=False).fit(module, datamodule=datamodule)

    # momentum=None over equal batches: the running mean is the exact mean over the train set
    # of the final weights' activations, unlike Lightning's default exponential average.
    images = TinyPaired(16, seed=0).images
    norm = next(m for m in student.modules() if isinstance(m, torch.nn.BatchNorm2d))
    expected = _first_batch_norm_input_mean(student, images)
    assert torch.allclose(norm.running_mean, expected, atol=1e-5)
    assert norm.momentum == 0.1, "the momentum is restored"
    for key, value in teacher.state_dict().items():  # the frozen teacher is untouched
        assert torch.equal(value, teacher_state[key]), key
