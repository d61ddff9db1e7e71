"""End to end on the demo dataset through the CLI: teacher, a student per method, predictions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from msrgb_bench.cli import main
from msrgb_bench.engine import load_run
from msrgb_bench.leaderboard.submission import read_submission, validate_submission
from msrgb_bench.leaderboard.truth import GroundTruth

METHODS = ["none", "kd", "logits", "rkd", "dkd", "ctkd", "lskd", "distilvpr"]
FAST = ["--epochs", "1", "--batch-size", "16", "--accelerator", "cpu", "--quiet"]


def invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "data"
    invoke("build-dataset", "--out", str(out), "--size", "tiny", "--quiet")
    return out


@pytest.mark.slow
def test_teacher_students_and_predictions(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    truth = GroundTruth.from_dataset(demo)

    teacher = tmp_path / "teacher"
    invoke(
        "train-teacher", "--data", str(demo), "--arch", "shufflenetv2", "--out", str(teacher), *FAST
    )  # fmt: skip
    run = load_run(teacher, kind="teacher")
    assert run.info["seed"] == 42 and run.info["best"]["epoch"] == 0
    assert len(json.loads((teacher / "metrics.json").read_text())) == 1
    preds = tmp_path / "teacher.csv"
    invoke("predict", "--run", str(teacher), "--data", str(demo), "--out", str(preds))
    frame, meta = read_submission(preds)
    assert meta.modality == "ms" and meta.method == "teacher"
    validate_submission(frame, meta, truth)

    for method in METHODS:
        student = tmp_path / method
        invoke(
            "distill", "--data", str(demo), "--teacher", str(teacher), "--method", method,
            "--student", "shufflenetv2", "--out", str(student), *FAST,
        )  # fmt: skip
        loaded = load_run(student, kind="student")
        assert loaded.config["method"] == method
        assert loaded.config["teacher_config_hash"] == run.config_hash
        preds = tmp_path / f"{method}.parquet"
        invoke("predict", "--run", str(student), "--data", str(demo), "--out", str(preds))
        frame, meta = read_submission(preds)
        assert (meta.method, meta.student_arch, meta.modality) == (method, "shufflenetv2", "rgb")
        assert meta.config_hash == loaded.config_hash and meta.checkpoint_rule == "best-val"
        aligned = validate_submission(frame, meta, truth)
        assert len(aligned.y_pred) == len(frame)


@pytest.mark.slow
def test_cli_errors_are_clean(demo: Path, tmp_path: Path) -> None:
    teacher = tmp_path / "teacher"
    invoke(
        "train-teacher", "--data", str(demo), "--arch", "mobilenetv2", "--out", str(teacher), *FAST
    )  # fmt: skip
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["distill", "--data", str(demo), "--teacher", str(teacher), "--method", "fitnet",
         "--student", "resnet34", "--out", str(tmp_path / "s"), *FAST],
    )  # fmt: skip
    assert result.exit_code != 0 and "unknown method 'fitnet'" in result.output
    result = runner.invoke(
        main,
        ["distill", "--data", str(demo), "--teacher", str(teacher), "--method", "kd",
         "--student", "resnet34", "--out", str(teacher), *FAST],
    )  # fmt: skip
    assert result.exit_code != 0 and "already exists" in result.output
    result = runner.invoke(
        main,
        ["distill", "--data", str(demo), "--teacher", str(teacher), "--method", "kd",
         "--student", "resnet34", "--out", str(tmp_path / "s"), "--set", "temprature=3", *FAST],
    )  # fmt: skip
    assert result.exit_code != 0 and "unknown method setting 'temprature'" in result.output
    assert not (tmp_path / "s").exists()


def test_list_commands() -> None:
    models = invoke("list-models")
    assert "shufflenetv2   tokens 1024-d" in models and "resnet34       tokens 512-d" in models
    methods = invoke("list-methods").splitlines()
    assert [line.split()[0] for line in methods] == sorted([*METHODS, "sembridge"])
    assert any(line.startswith("ctkd") and "Li et al." in line for line in methods)
