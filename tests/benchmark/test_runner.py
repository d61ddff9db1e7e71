"""The benchmark runner on the tiny demo dataset: rows, summaries, plots, resuming, errors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from msrgb_bench.benchmark import plan
from msrgb_bench.benchmark.protocol import list_protocols, load_protocol
from msrgb_bench.benchmark.results import oa_by_method_and_pair, summarize
from msrgb_bench.benchmark.runner import BenchmarkReport, Execution, run_benchmark
from msrgb_bench.cli import main
from msrgb_bench.data.manifest import read_info, read_manifest
from msrgb_bench.engine import load_run
from msrgb_bench.errors import ProtocolError, ResultsFolderError, UnknownNameError
from msrgb_bench.leaderboard.metrics import score
from msrgb_bench.leaderboard.submission import read_submission, validate_submission
from msrgb_bench.leaderboard.truth import GroundTruth
from msrgb_bench.pipelines.build import build_dataset

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*"),
    pytest.mark.filterwarnings("ignore:.*does not have many workers.*"),
    pytest.mark.filterwarnings("ignore:.*module\\(s\\) in eval mode.*"),
]
PAIRS = ["M/S", "S/S"]
METHODS = ["none", "kd"]
SEEDS = [0, 1]
TINY: dict[str, Any] = {
    "name": "tiny",
    "description": "one epoch of two batches, for tests",
    "teacher": {"epochs": 1, "batch_size": 32, "train_batches": 2},
    "student": {"epochs": 1, "batch_size": 32, "train_batches": 2},
    "bootstrap": {"replicates": 20, "seed": 3},
}
CPU = Execution(accelerator="cpu")


def write_protocol(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@dataclass
class Bench:
    data: Path
    root: Path
    protocol: Path
    report: BenchmarkReport


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "demo"
    return build_dataset("demo", out, size="tiny", progress=False).out


@pytest.fixture(scope="module")
def bench(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Bench:
    folder = tmp_path_factory.mktemp("bench")
    protocol = write_protocol(folder / "tiny.yaml", TINY)
    root = folder / "results"
    report = run_benchmark(
        demo, root, pairs=PAIRS, methods=METHODS, seeds=SEEDS, protocol=protocol,
        execution=CPU, progress=False,
    )  # fmt: skip
    return Bench(demo, root, protocol, report)


def run_again(bench: Bench, protocol: Path | None = None) -> BenchmarkReport:
    return run_benchmark(
        bench.data, bench.root, pairs=PAIRS, methods=METHODS, seeds=SEEDS,
        protocol=protocol or bench.protocol, execution=CPU, progress=False,
    )  # fmt: skip


def run_mtimes(root: Path) -> dict[str, int]:
    """Modification times of every checkpoint under teachers/ and students/."""
    return {
        str(p.relative_to(root)): p.stat().st_mtime_ns
        for folder in ("teachers", "students")
        for p in (root / folder).rglob("*.safetensors")
    }


def test_rows_are_the_evaluators_scores_of_the_written_predictions(bench: Bench) -> None:
    report = bench.report
    assert (report.cells, report.trained, report.skipped, report.rescored) == (8, 8, 0, 0)
    assert report.teachers_trained == 2 and report.matchers_trained == 0
    long = pd.read_csv(bench.root / "results.csv")
    assert len(long) == 8
    assert set(zip(long["pair"], long["method"], long["seed"], strict=True)) == set(
        product(PAIRS, METHODS, SEEDS)
    )
    truth = GroundTruth.from_dataset(bench.data)
    manifest = read_manifest(bench.data)
    labels = manifest[(manifest["modality"] == "rgb") & (manifest["split"] == "test")]
    labels = labels.set_index("sample_id")["label"]
    for row in long.to_dict("records"):
        preds_path = bench.root / row["predictions"]
        frame, meta = read_submission(preds_path)
        assert (meta.method, meta.student_arch, meta.seed) == (
            row["method"], row["student_arch"], row["seed"]
        )  # fmt: skip
        # OA recomputed here from the predictions and the manifest's labels.
        assert len(frame) == len(labels) == row["n_test"]
        correct = frame.set_index("sample_id")["pred"] == labels.loc[frame["sample_id"]].to_numpy()
        assert row["oa"] == pytest.approx(correct.mean(), abs=1e-12)
        # Every metric and the OA interval: the evaluator's, with the protocol's bootstrap.
        scores = score(validate_submission(frame, meta, truth), n_boot=20, seed=3)
        for metric in ("oa", "aa", "kappa", "macro_f1"):
            assert row[metric] == pytest.approx(scores.metrics[metric], abs=1e-12)
        assert (row["oa_low"], row["oa_high"]) == pytest.approx(scores.intervals["oa"])
        stored = json.loads(preds_path.with_suffix(".scores.json").read_text())
        assert stored["confusion_matrix"] == scores.confusion_matrix
        run = load_run(bench.root / row["run"], kind="student")
        assert (
            row["run"]
            == f"students/{row['pair'].replace('/', '-')}/{row['method']}/seed{row['seed']}"
        )
        assert run.config_hash == row["config_hash"] == meta.config_hash
        assert run.config["trainer"]["seed"] == row["seed"]
        assert run.config["trainer"]["train_batches"] == 2


def test_one_teacher_per_architecture_is_reused(bench: Bench) -> None:
    teachers = sorted(p.name for p in (bench.root / "teachers").iterdir())
    assert teachers == ["mobilenetv2-seed42", "shufflenetv2-seed42"]
    hashes = {
        name.split("-")[0]: load_run(bench.root / "teachers" / name, kind="teacher").config_hash
        for name in teachers
    }
    long = pd.read_csv(bench.root / "results.csv")
    for row in long.to_dict("records"):
        assert row["teacher_config_hash"] == hashes[row["teacher_arch"]]
        run = load_run(bench.root / row["run"])
        assert run.config["teacher_config_hash"] == hashes[row["teacher_arch"]]


def test_summaries_plots_and_record(bench: Bench) -> None:
    long = pd.read_csv(bench.root / "results.csv")
    expected = long.groupby(["pair", "method"])[["oa", "aa", "kappa", "macro_f1", "oa_low"]]
    means, stds = expected.mean(), expected.std(ddof=1)
    summary = pd.read_csv(bench.root / "summary.csv").set_index(["pair", "method"])
    assert len(summary) == 4 and (summary["n_seeds"] == 2).all()
    for metric in ("oa", "aa", "kappa", "macro_f1"):
        np.testing.assert_allclose(summary[f"{metric}_mean"], means.loc[summary.index, metric])
        np.testing.assert_allclose(summary[f"{metric}_std"], stds.loc[summary.index, metric])
    np.testing.assert_allclose(summary["oa_low_mean"], means.loc[summary.index, "oa_low"])

    markdown = (bench.root / "summary.md").read_text()
    caption = markdown.splitlines()[0]
    info = read_info(bench.data)
    assert caption.startswith("Protocol tiny; data demo") and info.content_hash[:12] in caption
    assert "CPU" in caption and "RGB train/val/test 90/40/30" in caption
    assert bench.report.summary_markdown == markdown
    oa = means.loc[("M/S", "kd"), "oa"]
    assert f"| M/S | mobilenetv2 | shufflenetv2 | kd | 2 | {100 * oa:.2f} ± " in markdown
    assert "<table" in (bench.root / "summary.html").read_text()

    plots = sorted(p.name for p in (bench.root / "plots").iterdir())
    assert plots == ["confusion_M-S.png", "confusion_S-S.png", "oa.png"]
    for name in plots:
        with Image.open(bench.root / "plots" / name) as image:
            assert image.format == "PNG" and min(image.size) > 200

    record = json.loads((bench.root / "benchmark.json").read_text())
    assert record["dataset"]["content_hash"] == info.content_hash
    assert record["dataset"]["sizes"]["rgb/test"] == 30
    assert record["protocol"]["teacher"]["epochs"] == 1
    assert record["invocations"][0]["hardware"]["cpu_cores"] >= 1
    assert record["invocations"][0]["execution"]["accelerator"] == "cpu"


def test_summary_aggregates_over_seeds() -> None:
    rng = np.random.default_rng(0)
    rows = [
        {"dataset": "d", "pair": p, "teacher_arch": "t", "student_arch": "s", "method": m,
         "seed": s, "oa": rng.random(), "aa": rng.random(), "kappa": rng.random(),
         "macro_f1": rng.random(), "oa_low": rng.random(), "oa_high": rng.random()}
        for p, m, s in product(["R/R", "R/M"], ["kd", "none"], range(3))
    ]  # fmt: skip
    long = pd.DataFrame(rows)
    summary = summarize(long)
    assert list(zip(summary["pair"], summary["method"], strict=True)) == [
        ("R/R", "kd"), ("R/R", "none"), ("R/M", "kd"), ("R/M", "none")
    ]  # fmt: skip
    grouped = long.groupby(["pair", "method"], sort=False)
    np.testing.assert_allclose(summary["oa_mean"], grouped["oa"].mean())
    np.testing.assert_allclose(summary["kappa_std"], grouped["kappa"].std(ddof=1))
    np.testing.assert_allclose(summary["oa_high_mean"], grouped["oa_high"].mean())

    compact = oa_by_method_and_pair(summary)
    assert list(compact.columns) == ["method", "R/R", "R/M"]
    assert list(compact["method"]) == ["kd", "none"]
    mean, std = grouped["oa"].mean()[("R/M", "none")], grouped["oa"].std()[("R/M", "none")]
    assert compact.loc[1, "R/M"] == f"{100 * mean:.2f} ± {100 * std:.2f}"


def test_resume_skips_finished_cells_and_redoes_a_killed_one(bench: Bench) -> None:
    before = run_mtimes(bench.root)
    assert len(before) == 2 * (2 + 8)  # best and last of 2 teachers and 8 students

    # A second call through the command line trains nothing.
    args = [
        "benchmark", "--data", str(bench.data), "--out", str(bench.root), "--pairs", "M/S,S/S",
        "--methods", "none,kd", "--seeds", "0,1", "--protocol", str(bench.protocol),
        "--accelerator", "cpu", "--quiet",
    ]  # fmt: skip
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "8 already done, 0 trained, 0 re-scored; 0 teacher(s)" in result.output
    assert "| S/S | shufflenetv2 | shufflenetv2 | none | 2 |" in result.output
    assert run_mtimes(bench.root) == before

    # Killed after training, before its row: only predicted and scored again.
    results_csv = bench.root / "results.csv"
    long = pd.read_csv(results_csv)
    is_cell = (long["pair"] == "M/S") & (long["method"] == "none") & (long["seed"] == 0)
    long[~is_cell].to_csv(results_csv, index=False)
    report = run_again(bench)
    assert (report.skipped, report.trained, report.rescored) == (7, 0, 1)
    assert run_mtimes(bench.root) == before

    # Killed while training: no run folder, a stale staging folder; only that cell is trained.
    long = pd.read_csv(results_csv)
    is_cell = (long["pair"] == "S/S") & (long["method"] == "kd") & (long["seed"] == 1)
    old_oa_row = long[is_cell].iloc[0]
    long[~is_cell].to_csv(results_csv, index=False)
    run_dir = bench.root / "students" / "S-S" / "kd" / "seed1"
    staging = run_dir.with_name(".seed1.partial")
    run_dir.rename(staging)
    (staging / "checkpoints" / "last.safetensors").unlink()
    report = run_again(bench)
    assert (report.skipped, report.trained, report.rescored, report.teachers_trained) == (
        7, 1, 0, 0
    )  # fmt: skip
    assert not staging.exists() and run_dir.is_dir()
    after = run_mtimes(bench.root)
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {
        "students/S-S/kd/seed1/checkpoints/best.safetensors",
        "students/S-S/kd/seed1/checkpoints/last.safetensors",
    }
    long = pd.read_csv(results_csv)
    assert len(long) == 8
    redone = long[(long["pair"] == "S/S") & (long["method"] == "kd") & (long["seed"] == 1)]
    # Same seed, same config: the same experiment again.
    assert redone.iloc[0]["config_hash"] == old_oa_row["config_hash"]
    record = json.loads((bench.root / "benchmark.json").read_text())
    assert len(record["invocations"]) == 4


def test_another_protocol_or_dataset_is_refused(bench: Bench, tmp_path: Path) -> None:
    other = write_protocol(tmp_path / "tiny.yaml", {**TINY, "student": {"epochs": 2}})
    with pytest.raises(ResultsFolderError, match="protocol 'tiny'") as caught:
        run_again(bench, protocol=other)
    assert caught.value.path == bench.root / "benchmark.json"

    rebuilt = build_dataset("demo", tmp_path / "demo7", size="tiny", seed=7, progress=False).out
    assert read_info(rebuilt).content_hash != read_info(bench.data).content_hash
    with pytest.raises(ResultsFolderError, match="content hash"):
        run_benchmark(
            rebuilt, bench.root, pairs=PAIRS, methods=METHODS, seeds=SEEDS,
            protocol=bench.protocol, execution=CPU, progress=False,
        )  # fmt: skip

    stranger = tmp_path / "not-results"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(ResultsFolderError, match=r"holds no benchmark\.json"):
        run_benchmark(
            bench.data, stranger, pairs=["S/S"], methods=["none"], seeds=[0],
            protocol=bench.protocol, execution=CPU, progress=False,
        )  # fmt: skip


def test_bad_names_fail_before_anything_is_written(bench: Bench, tmp_path: Path) -> None:
    out = tmp_path / "results"
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"pairs": ["X/S"]}, UnknownNameError, "backbone code 'X'"),
        ({"pairs": ["RS"]}, ValueError, "TEACHER/STUDENT"),
        ({"methods": ["nosuch"]}, UnknownNameError, "method 'nosuch'"),
        ({"methods": ["kd+dkd"]}, ValueError, "not a plug-in"),
        ({"seeds": ["-1"]}, ValueError, "non-negative"),
        ({"protocol": "nosuch"}, UnknownNameError, "protocol 'nosuch'"),
    ]
    for change, error, message in cases:
        kwargs: dict[str, Any] = {
            "pairs": ["S/S"], "methods": ["none"], "seeds": [0], "protocol": bench.protocol,
            **change,
        }  # fmt: skip
        with pytest.raises(error, match=message):
            run_benchmark(bench.data, out, execution=CPU, progress=False, **kwargs)
    assert not out.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 3}, "unknown protocol key 'epochs'"),
        ({"teacher": {"epoch": 3}}, "unknown key 'teacher.epoch'"),
        ({"student": {"seed": 3}}, "unknown key 'student.seed'"),
        ({"student": {"epochs": 0}}, "'student': epochs must be at least 1"),
        ({"student": {"epochs": "3"}}, "'student.epochs' must be int"),
        ({"student": {"augment": 1}}, "'student.augment' must be bool"),
        ({"matcher": {"arch": "resnet34", "towers": 2}}, "unknown key 'matcher.towers'"),
        ({"bootstrap": {"replicates": -1}}, "'bootstrap.replicates' must be >= 0"),
        ({"preset": "fast"}, "'preset' must be one of paper, original"),
        ({"method_overrides": {"kd+sembridge": {}}}, "one method or plug-in name"),
        ({"name": None}, "'name' must be str"),
    ],
)
def test_protocol_errors_name_the_file_and_key(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = write_protocol(tmp_path / "bad.yaml", {**TINY, **change})
    with pytest.raises(ProtocolError, match=message) as caught:
        load_protocol(path)
    assert caught.value.path == path and str(path) in str(caught.value)


def test_protocol_files_missing_keys_and_unknown_overrides(tmp_path: Path) -> None:
    path = write_protocol(
        tmp_path / "short.yaml", {k: v for k, v in TINY.items() if k != "student"}
    )
    with pytest.raises(ProtocolError, match="missing required key 'student'"):
        load_protocol(path)
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ProtocolError, match="not valid YAML"):
        load_protocol(tmp_path / "broken.yaml")
    with pytest.raises(ProtocolError, match="does not exist"):
        load_protocol(tmp_path / "absent.yaml")

    path = write_protocol(tmp_path / "ov.yaml", {**TINY, "method_overrides": {"kd": {"tau": 2}}})
    protocol = load_protocol(path)
    with pytest.raises(ProtocolError, match=r"'method_overrides\.kd\.tau' is not a setting") as c:
        plan.check_methods(["none", "kd"], protocol)
    assert c.value.path == path
    assert plan.check_methods(["none", "none"], protocol) == ["none"]

    no_ssm = {**TINY, "method_overrides": {"sembridge": {"ssm": False}}}
    protocol = load_protocol(write_protocol(tmp_path / "no-ssm.yaml", no_ssm))
    assert not plan.needs_matcher("dkd+sembridge", protocol)  # random pairs: no matcher to train
    assert plan.needs_matcher("dkd+sembridge", load_protocol(path))


def test_shipped_protocols() -> None:
    assert list_protocols() == ["mini", "paper"]
    paper, mini = load_protocol("paper"), load_protocol("mini")
    assert (paper.student.epochs, paper.student.batch_size, paper.student.lr) == (200, 256, 1e-3)
    assert paper.teacher.epochs == 200 and paper.student.train_batches is None
    assert (paper.matcher.epochs, paper.matcher.batch_size, paper.matcher.arch) == (
        100, 64, "resnet34"
    )  # fmt: skip
    assert paper.overrides_for("sembridge") == {}
    assert paper.student.precise_bn_batches == paper.teacher.precise_bn_batches == 0
    assert (mini.teacher.epochs, mini.student.epochs, mini.student.batch_size) == (8, 4, 64)
    assert mini.student.train_batches == mini.teacher.train_batches == 8
    assert mini.student.precise_bn_batches == mini.matcher.precise_bn_batches == 8
    assert (mini.matcher.epochs, mini.matcher.arch) == (4, "resnet34")
    rematch = {"dynm_e0": 2, "dynm_delta": 1, "dynm_mu": 0}
    assert mini.overrides_for("sembridge") == mini.overrides_for("dkd+sembridge") == rematch
    assert mini.overrides_for("kd") == mini.overrides_for("dkd") == {}
    assert plan.needs_matcher("dkd+sembridge") and not plan.needs_matcher("dkd")
    assert plan.check_methods(["kd", "sembridge", "dkd+sembridge"], mini) == [
        "kd", "sembridge", "dkd+sembridge"
    ]  # fmt: skip
    assert paper.fingerprint() != mini.fingerprint()

    result = CliRunner().invoke(main, ["benchmark", "--list-protocols"])
    assert result.exit_code == 0 and "mini " in result.output and "paper " in result.output
    result = CliRunner().invoke(main, ["benchmark", "--methods", "kd"])
    assert result.exit_code != 0 and "are required" in result.output


def test_sembridge_methods_share_one_matcher(demo: Path, tmp_path: Path) -> None:
    protocol = {
        **TINY,
        "matcher": {"epochs": 1, "batch_size": 32, "arch": "shufflenetv2"},
        "method_overrides": {"sembridge": {"dynm_e0": 1, "dynm_delta": 1, "dynm_mu": 0}},
    }
    path = write_protocol(tmp_path / "sem.yaml", protocol)
    root = tmp_path / "results"
    report = run_benchmark(
        demo, root, pairs=["S/S"], methods=["kd", "sembridge", "dkd+sembridge"], seeds=[0],
        protocol=path, execution=CPU, progress=False,
    )  # fmt: skip
    assert (report.trained, report.teachers_trained, report.matchers_trained) == (3, 1, 1)
    matcher = root / "matchers" / "shufflenetv2-seed42"
    assert sorted(p.name for p in (root / "matchers").iterdir()) == [matcher.name]
    for method in ("kd", "sembridge", "dkd+sembridge"):
        run = load_run(root / "students" / "S-S" / method / "seed0", kind="student")
        config = run.config["method_config"]["config"]
        if method == "kd":
            assert "matcher_run" not in run.info and "dynm_e0" not in config
        else:
            assert run.info["matcher_run"] == str(matcher.resolve())
            assert (config["dynm_e0"], config["dynm_delta"], config["dynm_mu"]) == (1, 1, 0)
    assert len(pd.read_csv(root / "results.csv")) == 3
