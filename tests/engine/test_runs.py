"""Checkpoints (safetensors round trip), run folders, config hashing and the run recorder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from msrgb_bench.engine.callbacks import RunRecorder
from msrgb_bench.engine.checkpoint import (
    load_checkpoint,
    load_into,
    read_metadata,
    save_checkpoint,
    strip_prefix,
)
from msrgb_bench.engine.config import (
    DatasetRef,
    TeacherRunConfig,
    TrainerConfig,
    config_hash,
    config_to_dict,
)
from msrgb_bench.engine.runs import (
    RUN_NAME,
    check_new_run,
    checkpoint_path,
    finish_run,
    load_run,
    write_config,
)
from msrgb_bench.errors import RunFolderError
from msrgb_bench.models import create_model

DATASET = DatasetRef(name="demo", content_hash="ab" * 32, classes=("a", "b", "c"), multilabel=False)


def teacher_config(**trainer: object) -> TeacherRunConfig:
    return TeacherRunConfig(
        arch="shufflenetv2",
        bands=("B02", "B03", "B04", "B08"),
        dataset=DATASET,
        trainer=TrainerConfig(**trainer),  # type: ignore[arg-type]
    )


def test_config_hash_is_the_sha256_of_canonical_json() -> None:
    config = teacher_config(epochs=3)
    data = config_to_dict(config)
    assert data["bands"] == ["B02", "B03", "B04", "B08"] and data["kind"] == "teacher"
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    assert config_hash(config) == hashlib.sha256(canonical.encode()).hexdigest()
    assert config_hash(teacher_config(epochs=3)) == config_hash(config)
    assert config_hash(teacher_config(epochs=3, lr=0.01)) != config_hash(config)


def test_bad_trainer_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="epochs"):
        TrainerConfig(epochs=0)
    with pytest.raises(ValueError, match="lr"):
        TrainerConfig(lr=-1.0)


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("mobilenetv2", in_chans=4, num_classes=3).eval()
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    state["extra.term.temperature_logit"] = torch.tensor(0.25)
    path = save_checkpoint(tmp_path / "ck.safetensors", state, {"epoch": "7"})

    assert path.read_bytes()[:8] != b"\x80\x04\x95"  # not a pickle
    tensors, meta = load_checkpoint(path)
    assert meta["epoch"] == "7" and meta["format"] == "msrgb-checkpoint/1"
    assert read_metadata(path) == meta
    assert float(strip_prefix(tensors, "extra.")["term.temperature_logit"]) == 0.25

    clone = create_model("mobilenetv2", in_chans=4, num_classes=3).eval()
    load_into(clone, strip_prefix(tensors, "model."), path)
    x = torch.randn(2, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(clone(x), model(x), rtol=0, atol=0)

    other = create_model("shufflenetv2", in_chans=4, num_classes=3)
    with pytest.raises(RunFolderError, match="does not fit"):
        load_into(other, strip_prefix(tensors, "model."), path)


def test_unreadable_checkpoints_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x80\x04\x95 not safetensors at all")
    with pytest.raises(RunFolderError, match=r"junk\.safetensors"):
        load_checkpoint(junk)
    with pytest.raises(RunFolderError, match="not found"):
        load_checkpoint(tmp_path / "missing.safetensors")
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(RunFolderError, match="not an msrgb checkpoint"):
        load_checkpoint(foreign)


class FakeModule:
    def __init__(self) -> None:
        self.value = torch.zeros(1)

    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        return {"model.w": self.value.clone()}


def test_run_recorder_keeps_last_and_best_on_val(tmp_path: Path) -> None:
    recorder = RunRecorder(tmp_path, "hash")
    module = FakeModule()
    for epoch, acc in enumerate([0.2, 0.5, 0.5, 0.4]):
        module.value.fill_(epoch)
        trainer = SimpleNamespace(
            current_epoch=epoch,
            is_global_zero=True,
            callback_metrics={"val/acc": torch.tensor(acc), "train/loss": torch.tensor(1.0)},
        )
        recorder.on_train_epoch_start(trainer, module)  # type: ignore[arg-type]
        recorder.on_train_epoch_end(trainer, module)  # type: ignore[arg-type]

    best, best_meta = load_checkpoint(checkpoint_path(tmp_path, "best"))
    last, last_meta = load_checkpoint(checkpoint_path(tmp_path, "last"))
    assert best_meta["epoch"] == "1" and float(best["model.w"]) == 1.0  # first of the tie
    assert last_meta["epoch"] == "3" and float(last["model.w"]) == 3.0
    assert best_meta["config_hash"] == "hash"
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0] == "epoch,seconds,train/loss,val/acc" and len(lines) == 5
    rows = json.loads((tmp_path / "metrics.json").read_text())
    assert [r["val/acc"] for r in rows] == pytest.approx([0.2, 0.5, 0.5, 0.4])


def test_run_recorder_requires_validation(tmp_path: Path) -> None:
    trainer = SimpleNamespace(current_epoch=0, is_global_zero=True, callback_metrics={})
    with pytest.raises(RuntimeError, match="val/acc"):
        RunRecorder(tmp_path, "h").on_train_epoch_end(trainer, FakeModule())  # type: ignore[arg-type]


def make_run(tmp_path: Path) -> Path:
    staging = tmp_path / ".run.partial"
    config = teacher_config(epochs=1)
    digest = write_config(staging, config)
    model = create_model("shufflenetv2", in_chans=4, num_classes=3)
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    for which in ("best", "last"):
        save_checkpoint(checkpoint_path(staging, which), state, {"config_hash": digest})
    return finish_run(staging, tmp_path / "run", {"kind": "teacher", "train_seconds": 1.5})


def test_finished_run_reads_back(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    assert not (tmp_path / ".run.partial").exists()
    run = load_run(run_dir, kind="teacher")
    assert run.arch == "shufflenetv2" and run.in_chans == 4 and run.classes == ["a", "b", "c"]
    assert run.info["train_seconds"] == 1.5
    model = run.build_model("best")
    assert not model.training and model.in_chans == 4
    with pytest.raises(RunFolderError, match="student run is needed"):
        load_run(run_dir, kind="student")
    with pytest.raises(RunFolderError, match="already exists"):
        check_new_run(run_dir)


def test_edited_or_unfinished_runs_are_refused(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    config_file = run_dir / "config.json"
    body = json.loads(config_file.read_text())
    body["config"]["trainer"]["lr"] = 0.5
    config_file.write_text(json.dumps(body))
    with pytest.raises(RunFolderError, match="config_hash does not match"):
        load_run(run_dir)
    (run_dir / RUN_NAME).unlink()
    with pytest.raises(RunFolderError, match=r"run\.json: missing"):
        load_run(run_dir)
    with pytest.raises(RunFolderError, match="no best checkpoint"):
        finish_run(tmp_path / "empty", tmp_path / "never", {})
