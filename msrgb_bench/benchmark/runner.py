"""``run_benchmark``: train, predict and score every cell of a benchmark, resumably.

For each cell (pair x method x seed) it reuses or trains the pair's teacher (one per teacher
architecture, with the protocol's teacher seed), reuses or trains the SemBridge matcher (one per
dataset, only for SemBridge methods), trains the student, predicts the RGB test split, scores
the predictions with the leaderboard evaluator and appends the cell's row to ``results.csv``.
Then it writes the summaries and plots over every finished cell of the folder.

Resuming: a cell with a row is skipped. A cell without a row whose student run folder is
complete (killed after training) is only predicted and scored again; one without a run folder
is trained again, after its stale ``.seed<k>.partial`` staging folder is cleared. Run folders
appear only when complete (the engine trains into a staging folder and renames it).

Multi-GPU: execution settings go to every ``TrainerConfig``. With Lightning's ``ddp`` strategy
the command is re-launched once per device; every process walks the same cells and joins each
training, while only rank 0 writes files, and the others wait for it after each training.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from msrgb_bench.atomic import write_text_atomic
from msrgb_bench.benchmark import plan, provenance, results
from msrgb_bench.benchmark.plan import Cell, Pair
from msrgb_bench.benchmark.plots import draw_plots
from msrgb_bench.benchmark.protocol import Protocol, load_protocol
from msrgb_bench.data.manifest import read_info, read_manifest
from msrgb_bench.engine.config import TrainerConfig
from msrgb_bench.engine.runs import TEACHER_KIND, load_run, staging_dir
from msrgb_bench.engine.trainer import parse_devices
from msrgb_bench.errors import RunFolderError
from msrgb_bench.leaderboard.truth import GroundTruth

TEST_SPLIT = "test"


@dataclass(frozen=True)
class Execution:
    """Where the training runs (passed through to every ``TrainerConfig``).

    Attributes:
        accelerator: Lightning accelerator (``auto``, ``cpu``, ``gpu``).
        devices: Lightning devices (``auto``, a count, or ids ``0,1``).
        strategy: Lightning strategy (``auto``, ``ddp``...).
        precision: Lightning precision (``32-true``, ``bf16-mixed``...).
        num_workers: DataLoader workers per device.
    """

    accelerator: str = "auto"
    devices: str = "auto"
    strategy: str = "auto"
    precision: str = "32-true"
    num_workers: int = 0

    def trainer(self, base: TrainerConfig, seed: int) -> TrainerConfig:
        """Return ``base`` with these settings and ``seed``."""
        return replace(
            base, seed=seed, accelerator=self.accelerator, devices=self.devices,
            strategy=self.strategy, precision=self.precision, num_workers=self.num_workers,
        )  # fmt: skip

    def predict_device(self) -> str | None:
        """The device predictions run on (``None``: the engine's default, a GPU if any)."""
        if self.accelerator == "cpu":
            return "cpu"
        devices = parse_devices(self.devices)
        if self.accelerator in ("gpu", "cuda", "auto") and isinstance(devices, list) and devices:
            import torch

            if torch.cuda.is_available():
                return f"cuda:{devices[0]}"
        return None


@dataclass(frozen=True)
class BenchmarkReport:
    """What one call of :func:`run_benchmark` did.

    Attributes:
        results: The results folder.
        cells: Cells asked for.
        skipped: Cells already finished before this call.
        trained: Students trained by this call.
        rescored: Cells whose complete run was only predicted and scored again.
        teachers_trained: Teachers trained by this call.
        matchers_trained: Matchers trained by this call.
        summary_markdown: The Markdown summary of every finished cell of the folder.
        written: Summary and plot files written.
    """

    results: Path
    cells: int
    skipped: int
    trained: int
    rescored: int
    teachers_trained: int
    matchers_trained: int
    summary_markdown: str
    written: tuple[Path, ...] = ()


def _is_rank_zero() -> bool:
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def _wait_for_rank_zero() -> None:
    """Under DDP, wait until rank 0 has moved the finished run into place."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _train_into(out: Path, train: Callable[[], Path]) -> None:
    """Train a run into ``out``, clearing a stale staging folder of a killed run first."""
    if _is_rank_zero():
        shutil.rmtree(staging_dir(out), ignore_errors=True)
    train()
    _wait_for_rank_zero()


class _Benchmark:
    """One call's state: the settings, the teachers and matcher ready so far, the counters."""

    def __init__(
        self, data: Path, root: Path, protocol: Protocol, execution: Execution, progress: bool,
        content_hash: str,
    ) -> None:  # fmt: skip
        self.data = data
        self.root = root
        self.protocol = protocol
        self.execution = execution
        self.progress = progress
        self.content_hash = content_hash
        self.teachers: dict[str, tuple[Path, str]] = {}
        self.matcher: Path | None = None
        self.counts = {"trained": 0, "rescored": 0, "teachers": 0, "matchers": 0}

    def teacher(self, arch: str) -> tuple[Path, str]:
        """Return the teacher run of ``arch`` and its config hash, training it if needed."""
        if arch not in self.teachers:
            from msrgb_bench.engine.train import train_teacher

            seed = self.protocol.teacher_seed
            out = plan.teacher_dir(self.root, arch, seed)
            if not out.is_dir():
                trainer = self.execution.trainer(self.protocol.teacher, seed)
                _train_into(
                    out,
                    lambda: train_teacher(
                        self.data, arch, out, trainer=trainer, progress=self.progress
                    ),
                )
                self.counts["teachers"] += 1
            run = load_run(out, kind=TEACHER_KIND)
            if run.config["dataset"]["content_hash"] != self.content_hash:
                raise RunFolderError(out, "was trained on another dataset (content hashes differ)")
            self.teachers[arch] = (out, run.config_hash)
        return self.teachers[arch]

    def matcher_run(self) -> Path:
        """Return the SemBridge matcher run of the dataset, training it if needed."""
        if self.matcher is None:
            settings = self.protocol.matcher
            out = plan.matcher_dir(self.root, settings.arch, self.protocol.teacher_seed)
            if not out.is_dir():
                _train_into(
                    out,
                    lambda: train_matcher(
                        self.data, out, self.protocol, self.execution, self.progress
                    ),
                )
                self.counts["matchers"] += 1
            self.matcher = out
        return self.matcher

    def student(self, cell: Cell, teacher: Path, teacher_hash: str) -> Path:
        """Return the cell's student run, training it unless a complete one is there."""
        out = cell.run_dir(self.root)
        if not out.is_dir():
            uses_matcher = plan.needs_matcher(cell.method, self.protocol)
            matcher = self.matcher_run() if uses_matcher else None
            trainer = self.execution.trainer(self.protocol.student, cell.seed)
            _train_into(
                out,
                lambda: distill_cell(
                    self.data, teacher, cell, out, self.protocol, trainer, matcher, self.progress
                ),
            )
            self.counts["trained"] += 1
        else:
            self.counts["rescored"] += 1
        run = load_run(out)
        if run.config.get("teacher_config_hash") != teacher_hash:
            raise RunFolderError(
                out, "was distilled from another teacher run than the one here; delete it to redo"
            )
        return out

    def score(self, cell: Cell, truth: GroundTruth) -> dict[str, Any]:
        """Predict the test split with the cell's run, score it and return its long-table row."""
        import json

        from msrgb_bench.engine.prediction import predict
        from msrgb_bench.leaderboard.metrics import score
        from msrgb_bench.leaderboard.submission import read_submission, validate_submission

        out = cell.run_dir(self.root)
        run = load_run(out)
        predictions = predict(
            out, self.data, TEST_SPLIT, cell.predictions_path(self.root),
            batch_size=self.protocol.student.batch_size, num_workers=self.execution.num_workers,
            device=self.execution.predict_device(),
        )  # fmt: skip
        frame, meta = read_submission(predictions)
        aligned = validate_submission(frame, meta, truth, source=str(predictions))
        boot = self.protocol.bootstrap
        scores = score(aligned, n_boot=boot.replicates, seed=boot.seed)
        write_text_atomic(cell.scores_path(self.root), json.dumps(scores.to_dict(), indent=2))
        interval = scores.intervals.get("oa") or (float("nan"), float("nan"))
        return {
            "dataset": truth.dataset,
            "dataset_hash": truth.dataset_hash,
            "protocol": self.protocol.name,
            "pair": cell.pair.code,
            "teacher_arch": cell.pair.teacher,
            "student_arch": cell.pair.student,
            "method": cell.method,
            "seed": cell.seed,
            **scores.metrics,
            "oa_low": interval[0],
            "oa_high": interval[1],
            "n_test": scores.n_samples,
            "best_epoch": int(run.info["best"]["epoch"]),
            "train_seconds": float(run.info.get("train_seconds", float("nan"))),
            "config_hash": run.config_hash,
            "teacher_config_hash": run.config["teacher_config_hash"],
            "run": out.relative_to(self.root).as_posix(),
            "predictions": predictions.relative_to(self.root).as_posix(),
            "finished": provenance.now(),
        }


def train_matcher(
    data: Path, out: Path, protocol: Protocol, execution: Execution, progress: bool
) -> Path:
    """Train SemBridge's matcher into ``out`` with the protocol's matcher settings."""
    from msrgb_bench.baselines.sembridge.matcher_training import train_matcher as train

    settings = protocol.matcher
    return train(
        data, out, epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr,
        seed=protocol.teacher_seed, arch=settings.arch, train_batches=settings.train_batches,
        precise_bn_batches=settings.precise_bn_batches, accelerator=execution.accelerator,
        devices=execution.devices, strategy=execution.strategy, precision=execution.precision,
        num_workers=execution.num_workers, progress=progress,
    )  # fmt: skip


def distill_cell(
    data: Path, teacher: Path, cell: Cell, out: Path, protocol: Protocol, trainer: TrainerConfig,
    matcher: Path | None, progress: bool,
) -> Path:  # fmt: skip
    """Train one cell's student (SemBridge methods get the matcher run, others none)."""
    from msrgb_bench.engine.train import distill

    return distill(
        data, teacher, cell.method, cell.pair.student, out, preset=protocol.preset,
        overrides=protocol.overrides_for(cell.method), trainer=trainer, matcher=matcher,
        progress=progress,
    )  # fmt: skip


def summarize_folder(root: Path, record: dict[str, Any]) -> tuple[str, tuple[Path, ...]]:
    """Write the summaries and plots of every finished cell; return the Markdown and paths."""
    long = results.read_results(root)
    summary = results.summarize(long)
    hardware = dict.fromkeys(
        provenance.hardware_text(inv["hardware"]) for inv in record["invocations"]
    )
    boot = record["protocol"]["bootstrap"]
    data = provenance.dataset_text(record["dataset"])
    caption = (
        f"Protocol {record['protocol']['name']}; data {data}; "
        f"hardware: {'; '.join(hardware)}. Test split. Mean ± sample std over seeds; "
        f"OA 95% CI: mean over seeds of each run's percentile bootstrap interval "
        f"({boot['replicates']} replicates of the test images)."
    )
    written = results.write_summaries(root, summary, caption)
    written += draw_plots(root, long, summary, f"Protocol {record['protocol']['name']}")
    return results.summary_markdown(summary, caption), tuple(written)


def _command_line(pairs: Sequence[Pair], methods: Sequence[str], seeds: Sequence[int]) -> str:
    return shlex.join(
        ["--pairs", ",".join(p.code for p in pairs), "--methods", ",".join(methods),
         "--seeds", ",".join(map(str, seeds))]
    )  # fmt: skip


def run_benchmark(
    data: str | Path,
    out: str | Path,
    *,
    pairs: Sequence[str],
    methods: Sequence[str],
    seeds: Sequence[int | str],
    protocol: Protocol | str | Path,
    execution: Execution | None = None,
    progress: bool = True,
    command: str | None = None,
) -> BenchmarkReport:
    """Run (or resume) a benchmark into the results folder ``out``.

    Args:
        data: The dataset folder (its RGB test labels are scored).
        out: The results folder (created; an existing one must hold this protocol and dataset).
        pairs: Pair codes such as ``"R/R"``, ``"M/S"``.
        methods: Method names, ``"X+plugin"`` combinations allowed.
        seeds: Student seeds.
        protocol: A protocol, a shipped protocol's name or a protocol file.
        execution: Accelerator, devices, strategy, precision and workers.
        progress: Show a progress bar over cells and the engine's bars over epochs.
        command: The command line to record (default: the cells asked for).

    Returns:
        What was done, with the Markdown summary.

    Raises:
        UnknownNameError: For an unknown backbone code, method or protocol name.
        ProtocolError: For a malformed protocol, or an override a method lacks.
        ResultsFolderError: If ``out`` holds results of another protocol or dataset.
        ManifestError: If ``data`` is not a dataset folder or its content hash disagrees.
        SubmissionError: If the dataset's RGB test labels are hidden (a public copy).
    """
    from tqdm.auto import tqdm

    data, root = Path(data), Path(out)
    execution = execution or Execution()
    loaded = protocol if isinstance(protocol, Protocol) else load_protocol(protocol)
    pair_list = plan.parse_pairs(pairs)
    method_list = plan.check_methods(methods, loaded)
    seed_list = plan.parse_seeds(seeds)
    cells = plan.plan_cells(pair_list, method_list, seed_list)

    info = read_info(data)
    truth = GroundTruth.from_dataset(data)  # re-checks the manifest's content hash
    truth.target(TEST_SPLIT, "rgb")  # fails now, not after training, if test labels are hidden
    dataset = provenance.dataset_facts(data, info, read_manifest(data))
    previous = provenance.check_record(root, loaded, dataset)
    rank_zero = _is_rank_zero()
    record = previous
    if rank_zero:
        invocation = {
            "command": command or _command_line(pair_list, method_list, seed_list),
            "pairs": [p.code for p in pair_list],
            "methods": method_list,
            "seeds": seed_list,
            "execution": asdict(execution),
        }
        root.mkdir(parents=True, exist_ok=True)
        record = provenance.write_record(root, loaded, dataset, invocation, previous)

    done = results.finished_keys(results.read_results(root))
    todo = [c for c in cells if c.key not in done]
    bench = _Benchmark(data, root, loaded, execution, progress, info.content_hash)
    bar = tqdm(
        total=len(cells), initial=len(cells) - len(todo), desc="cells", unit="cell",
        disable=not (progress and rank_zero),
    )  # fmt: skip
    with bar:
        for cell in todo:
            bar.set_postfix_str(f"{cell.pair.code} {cell.method} seed {cell.seed}")
            teacher, teacher_hash = bench.teacher(cell.pair.teacher)
            bench.student(cell, teacher, teacher_hash)
            if rank_zero:
                results.append_row(root, bench.score(cell, truth))
            bar.update(1)

    markdown = ""
    written: tuple[Path, ...] = ()
    if rank_zero:
        assert record is not None
        markdown, written = summarize_folder(root, record)
    return BenchmarkReport(
        results=root,
        cells=len(cells),
        skipped=len(cells) - len(todo),
        trained=bench.counts["trained"],
        rescored=bench.counts["rescored"],
        teachers_trained=bench.counts["teachers"],
        matchers_trained=bench.counts["matchers"],
        summary_markdown=markdown,
        written=written,
    )
