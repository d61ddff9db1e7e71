"""SemBridge's matcher (SSM): loss, pseudo-RGB, training run folder, initial pairs and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from msrgb_bench.baselines.sembridge.initial_pairs import (
    embed_students,
    embed_teachers,
    match_initial_pairs,
)
from msrgb_bench.baselines.sembridge.matcher import (
    REFLECTANCE_SCALE,
    Matcher,
    ProjectionHead,
    PseudoRGB,
    soft_clip_loss,
)
from msrgb_bench.baselines.sembridge.matcher_training import load_matcher, train_matcher
from msrgb_bench.cli import main
from msrgb_bench.data.datamodule import normalizer
from msrgb_bench.data.manifest import read_info, read_manifest
from msrgb_bench.data.paired import PairedMSRGBDataset
from msrgb_bench.engine.callbacks import RunRecorder
from msrgb_bench.engine.checkpoint import load_checkpoint
from msrgb_bench.engine.config import config_hash
from msrgb_bench.engine.runs import checkpoint_path, load_run, staging_dir
from msrgb_bench.errors import ManifestError, RunFolderError
from msrgb_bench.pipelines.build import build_dataset

ARCH = "shufflenetv2"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "data"
    build_dataset("demo", out, size="tiny", progress=False)
    return out


@pytest.fixture(scope="module")
def run(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("runs") / "matcher"
    return train_matcher(
        demo, out, epochs=2, batch_size=16, arch=ARCH, accelerator="cpu", progress=False
    )


# --- loss and heads ----------------------------------------------------------------------------


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def numpy_soft_clip(ms: np.ndarray, rgb: np.ndarray, tau: float) -> float:
    logits = rgb @ ms.T / tau
    targets = np.exp(_log_softmax((ms @ ms.T + rgb @ rgb.T) / 2 * tau))
    rgb_loss = -(targets * _log_softmax(logits)).sum(axis=1)
    ms_loss = -(targets.T * _log_softmax(logits.T)).sum(axis=1)
    return float(((rgb_loss + ms_loss) / 2).mean())


@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_soft_clip_loss_matches_numpy(tau: float) -> None:
    gen = np.random.default_rng(0)
    ms, rgb = gen.normal(size=(6, 8)), gen.normal(size=(6, 8))
    got = soft_clip_loss(torch.from_numpy(ms), torch.from_numpy(rgb), temperature=tau)
    assert float(got) == pytest.approx(numpy_soft_clip(ms, rgb, tau), rel=1e-5)


@pytest.mark.parametrize("scale", [0.7, 1.0, 2.0])
def test_soft_clip_loss_of_identical_orthogonal_embeddings(scale: float) -> None:
    # I = T = scale * orthonormal rows: logits = scale^2 Id and targets = softmax_row(scale^2 Id)
    # are symmetric and equal to softmax(logits), so both halves are the targets' entropy.
    batch = 4
    emb = scale * torch.linalg.qr(torch.randn(8, 8, dtype=torch.float64))[0][:batch]
    p = np.exp(scale**2) / (np.exp(scale**2) + batch - 1)
    q = 1 / (np.exp(scale**2) + batch - 1)
    entropy = -(p * np.log(p) + (batch - 1) * q * np.log(q))
    assert float(soft_clip_loss(emb, emb)) == pytest.approx(entropy, rel=1e-5)


def test_soft_clip_loss_is_lowest_for_aligned_pairs() -> None:
    sharp = 10.0 * torch.eye(4, 16)
    assert float(soft_clip_loss(sharp, sharp)) < 1e-6
    assert float(soft_clip_loss(sharp, sharp[[1, 0, 3, 2]])) > 50.0


def test_identical_towers_give_identical_embeddings() -> None:
    torch.manual_seed(0)
    matcher = Matcher(3, ARCH).eval()
    matcher.rgb_backbone.load_state_dict(matcher.ms_backbone.state_dict())
    matcher.rgb_head.load_state_dict(matcher.ms_head.state_dict())
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        ms, rgb = matcher(x, x)
    torch.testing.assert_close(ms, rgb)
    assert ms.shape == (4, 256)
    reference = numpy_soft_clip(ms.double().numpy(), rgb.double().numpy(), 1.0)
    assert float(soft_clip_loss(ms, rgb)) == pytest.approx(reference, rel=1e-4)


def test_projection_head_is_the_residual_formula() -> None:
    torch.manual_seed(0)
    head = ProjectionHead().eval()
    x = torch.randn(3, 512)
    p = x @ head.projection.weight.T + head.projection.bias
    hidden = torch.nn.functional.gelu(p) @ head.fc.weight.T + head.fc.bias
    expected = torch.nn.functional.layer_norm(hidden + p, (256,))  # LN starts as identity affine
    torch.testing.assert_close(head(x), expected)


def test_matcher_heads_are_frozen_and_unused() -> None:
    matcher = Matcher(13, ARCH)
    frozen = {n for n, p in matcher.named_parameters() if not p.requires_grad}
    assert frozen == {f"{t}_backbone.fc.{k}" for t in ("ms", "rgb") for k in ("weight", "bias")}


# --- pseudo-RGB --------------------------------------------------------------------------------


def crafted_ms(bands: tuple[str, ...], size: int) -> torch.Tensor:
    """Band k holds 150 * (k + 1) (raw reflectance x 10000), a different value per band."""
    values = 150.0 * torch.arange(1, len(bands) + 1, dtype=torch.float32)
    return values.view(1, -1, 1, 1).expand(2, -1, size, size).clone()


def expected_pseudo(demo: Path, picked: list[str]) -> np.ndarray:
    info = read_info(demo)
    raw = np.array([150.0 * (info.ms_bands.index(b) + 1) for b in picked])
    eight_bit = np.floor(np.clip(raw / 2750.0 * 255.0, 0, 255))
    mean, std = np.array(info.norm["rgb"]["mean"]), np.array(info.norm["rgb"]["std"])
    return (eight_bit - mean) / std


@pytest.mark.parametrize(
    ("channels", "picked"), [("rgb", ["B04", "B03", "B02"]), ("first3", ["B01", "B02", "B03"])]
)
def test_pseudo_rgb_picks_bands_scales_normalises_and_resizes(
    demo: Path, channels: str, picked: list[str]
) -> None:
    info = read_info(demo)
    assert REFLECTANCE_SCALE == 2750.0
    pseudo = PseudoRGB(demo, channels=channels)
    assert pseudo.bands == tuple(picked)
    out = pseudo(crafted_ms(info.ms_bands, 32))  # resized from 32 to the RGB size
    assert out.shape == (2, 3, info.rgb_size, info.rgb_size)
    expected = torch.tensor(expected_pseudo(demo, picked), dtype=torch.float32)
    torch.testing.assert_close(out, expected.view(1, 3, 1, 1).expand_as(out))


def test_pseudo_rgb_follows_the_input_band_order(demo: Path) -> None:
    info = read_info(demo)
    order = tuple(reversed(info.ms_bands))
    x = crafted_ms(info.ms_bands, info.ms_size)[:, list(range(len(order)))[::-1]]
    out = PseudoRGB(demo, bands=order)(x)
    expected = torch.tensor(expected_pseudo(demo, ["B04", "B03", "B02"]), dtype=torch.float32)
    torch.testing.assert_close(out[0, :, 0, 0], expected)


def test_pseudo_rgb_names_the_folder_without_its_bands(demo: Path, tmp_path: Path) -> None:
    data = json.loads((demo / "dataset.json").read_text())
    data["ms_bands"] = [b for b in data["ms_bands"] if b != "B04"]
    folder = tmp_path / "no-red"
    folder.mkdir()
    (folder / "dataset.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=r"no-red.*B04"):
        PseudoRGB(folder)
    assert PseudoRGB(folder, channels="first3").bands == ("B01", "B02", "B03")
    with pytest.raises(ValueError, match="holds only"):
        PseudoRGB(demo, bands=("B01", "B02"))
    with pytest.raises(ValueError, match="pseudo-RGB channels"):
        PseudoRGB(demo, channels="nir")


# --- best checkpoint on the lowest loss ---------------------------------------------------------


class FakeModule:
    def __init__(self) -> None:
        self.value = torch.zeros(1)

    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        return {"model.w": self.value.clone()}


def test_run_recorder_min_mode_keeps_the_lowest_loss(tmp_path: Path) -> None:
    recorder = RunRecorder(tmp_path, "h", monitor="val/loss", mode="min")
    module = FakeModule()
    for epoch, loss in enumerate([3.0, 1.0, 2.0, 1.0]):
        module.value.fill_(epoch)
        metrics = {"val/loss": torch.tensor(loss)}
        trainer = SimpleNamespace(
            current_epoch=epoch, is_global_zero=True, callback_metrics=metrics
        )
        recorder.on_train_epoch_start(trainer, module)  # type: ignore[arg-type]
        recorder.on_train_epoch_end(trainer, module)  # type: ignore[arg-type]
    best, meta = load_checkpoint(checkpoint_path(tmp_path, "best"))
    assert meta["epoch"] == "1" and float(best["model.w"]) == 1.0 and meta["val/loss"] == "1.0"
    with pytest.raises(ValueError, match="mode"):
        RunRecorder(tmp_path, "h", mode="lowest")


# --- training run -------------------------------------------------------------------------------


def test_train_matcher_writes_a_run_folder(run: Path, demo: Path) -> None:
    assert not staging_dir(run).exists()
    names = {p.name for p in run.iterdir()}
    assert names == {"config.json", "run.json", "metrics.csv", "metrics.json", "checkpoints"}
    loaded = load_run(run, kind="matcher")
    info = read_info(demo)
    config = loaded.config
    assert config["kind"] == "matcher" and config["arch"] == ARCH
    assert config["bands"] == list(info.extra["teacher_default_bands"])
    assert config["pseudo_rgb_bands"] == ["B04", "B03", "B02"]
    assert config["trainer"]["weight_decay"] == 1e-3 and config["trainer"]["epochs"] == 2
    assert config["dataset"]["content_hash"] == info.content_hash

    rows = json.loads((run / "metrics.json").read_text())
    assert [r["epoch"] for r in rows] == [0, 1]
    losses = [r["val/loss"] for r in rows]
    best_epoch = int(np.argmin(losses))
    assert loaded.info["best"] == {"epoch": best_epoch, "val/loss": losses[best_epoch]}
    assert loaded.info["last"]["epoch"] == 1
    _, meta = load_checkpoint(checkpoint_path(run, "best"))
    assert meta["epoch"] == str(best_epoch) and meta["config_hash"] == loaded.config_hash
    assert all(np.isfinite(r["train/loss"]) for r in rows)

    with pytest.raises(RunFolderError, match="already exists"):
        train_matcher(demo, run, epochs=1, arch=ARCH, progress=False)
    with pytest.raises(RunFolderError, match="a teacher or student run"):
        load_run(run)


def test_load_matcher_round_trips_the_weights(run: Path) -> None:
    for which in ("best", "last"):
        matcher, info = load_matcher(run, which)
        tensors, meta = load_checkpoint(checkpoint_path(run, which))
        state = matcher.state_dict()
        assert set(state) == {k.removeprefix("model.") for k in tensors}
        for name, value in tensors.items():
            torch.testing.assert_close(state[name.removeprefix("model.")], value)
        assert not matcher.training and info.checkpoint == which
        assert info.epoch == int(meta["epoch"]) and info.val_loss == float(meta["val/loss"])
        assert matcher.ms_bands == info.bands and matcher.ms_in_chans == len(info.bands)


def test_load_matcher_refuses_other_folders(run: Path, tmp_path: Path) -> None:
    partial = tmp_path / ".m.partial"
    shutil.copytree(run, partial)
    (partial / "run.json").unlink()
    with pytest.raises(RunFolderError, match=r"run\.json.*missing"):
        load_matcher(partial)

    other = tmp_path / "other"
    shutil.copytree(run, other)
    body = json.loads((other / "config.json").read_text())
    body["config"]["kind"] = "teacher"
    (other / "config.json").write_text(json.dumps(body))
    with pytest.raises(RunFolderError, match="config_hash does not match"):
        load_matcher(other)
    body["config_hash"] = config_hash(body["config"])
    (other / "config.json").write_text(json.dumps(body))
    with pytest.raises(RunFolderError, match="is a teacher run; a matcher run is needed"):
        load_matcher(other)
    with pytest.raises(RunFolderError, match="run folder not found"):
        load_matcher(tmp_path / "nothing")


# --- initial pairs ------------------------------------------------------------------------------


def calibrated(matcher: Matcher, dataset: PairedMSRGBDataset) -> Matcher:
    """Set BN statistics to the data's: a 2-epoch matcher's eval-mode embeddings all coincide."""
    for module in matcher.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    root = dataset.root
    ms = dataset.teacher.read_images(range(len(dataset.teacher)))
    rgb = dataset.student.read_images(range(len(dataset.student)))
    matcher.train()
    with torch.no_grad():
        matcher.encode_ms(normalizer(root, "ms", matcher.ms_bands)(ms))
        matcher.encode_rgb(normalizer(root, "rgb")(rgb))
    return matcher.eval()


@pytest.fixture(scope="module")
def matcher(run: Path, demo: Path) -> Matcher:
    loaded, _ = load_matcher(run)
    return calibrated(loaded, PairedMSRGBDataset(demo, "train"))


def brute_force(dataset: PairedMSRGBDataset, students: np.ndarray, teachers: np.ndarray) -> list:
    s = students / np.linalg.norm(students, axis=1, keepdims=True)
    t = teachers / np.linalg.norm(teachers, axis=1, keepdims=True)
    pairs = []
    for i, label in enumerate(dataset.student_labels):
        same = np.flatnonzero(dataset.teacher_labels_array == label)
        pairs.append(dataset.teacher_ids[same[np.argmax(t[same] @ s[i])]])
    return pairs


@pytest.mark.parametrize("split", ["train", "val"])
def test_match_initial_pairs(demo: Path, matcher: Matcher, split: str) -> None:
    dataset = PairedMSRGBDataset(demo, split)
    pairs = match_initial_pairs(matcher, dataset, batch_size=16)
    assert len(pairs) == len(dataset.student)

    manifest = read_manifest(demo).set_index("sample_id")
    rows = manifest.loc[pairs]
    assert set(rows["modality"]) == {"ms"} and set(rows["split"]) == {"train"}
    assert (rows["label"].to_numpy() == dataset.student_labels).all()
    dataset.set_pairs(pairs)  # the dataset accepts them
    assert len(set(pairs)) > dataset.num_classes  # not one teacher per class

    teachers = embed_teachers(matcher, dataset, batch_size=16).numpy().astype(np.float64)
    students = embed_students(matcher, dataset, batch_size=7).numpy().astype(np.float64)
    assert pairs == brute_force(dataset, students, teachers)
    assert match_initial_pairs(matcher, dataset, batch_size=5) == pairs


def test_embeddings_are_per_sample_embeddings(demo: Path, matcher: Matcher) -> None:
    dataset = PairedMSRGBDataset(demo, "val")
    batched = embed_teachers(matcher, dataset, batch_size=16)
    ms_norm, rgb_norm = normalizer(demo, "ms", matcher.ms_bands), normalizer(demo, "rgb")
    with torch.no_grad():
        for i in (0, len(dataset.teacher) - 1):
            one = matcher.encode_ms(ms_norm(dataset.teacher[i]["image"][None]))
            torch.testing.assert_close(batched[i], one[0], atol=1e-4, rtol=1e-4)
        batched = embed_students(matcher, dataset, batch_size=16)
        one = matcher.encode_rgb(rgb_norm(dataset.student[3]["image"][None]))
        torch.testing.assert_close(batched[3], one[0], atol=1e-4, rtol=1e-4)


def test_match_initial_pairs_checks_the_bands(demo: Path) -> None:
    dataset = PairedMSRGBDataset(demo, "train", ms_bands=("B02", "B03", "B04"))
    with pytest.raises(ValueError, match="takes 13 bands"):
        match_initial_pairs(Matcher(13, ARCH), dataset)


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_train_matcher(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    args = [
        "train-matcher", "--data", str(demo), "--out", str(out), "--epochs", "1", "--arch", ARCH,
        "--batch-size", "32", "--pseudo-rgb", "first3", "--bands", "B02,B03,B04,B08",
        "--accelerator", "cpu", "--quiet",
    ]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    matcher, info = load_matcher(out)
    assert info.bands == ("B02", "B03", "B04", "B08") and matcher.ms_in_chans == 4
    assert info.pseudo_rgb == "first3" and info.pseudo_rgb_bands == ("B01", "B02", "B03")
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "already exists" in again.output
    bad = CliRunner().invoke(main, [*args[:4], str(tmp_path / "n"), "--bands", "B99"])
    assert bad.exit_code == 1 and "B99" in bad.output
