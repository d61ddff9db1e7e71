"""The ``msrgb`` command line: a thin click layer that parses arguments and calls the library.

Heavy libraries (torch, torchgeo, rasterio) are imported inside the commands, never at module
level, so ``msrgb --help`` answers at once.
"""

from __future__ import annotations

import importlib
import platform
import sys
from pathlib import Path
from typing import Any

import click

from msrgb_bench import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="msrgb")
def main() -> None:
    """msrgb-bench: asymmetric MS -> RGB knowledge distillation for scene classification."""


def _version_of(module: str, attr: str = "__version__") -> str:
    try:
        return str(getattr(importlib.import_module(module), attr))
    except Exception as exc:  # an optional or broken install must not break `info`
        return f"not available ({type(exc).__name__})"


@main.command()
def info() -> None:
    """Print versions, the compute device and where the sample data is."""
    from msrgb_bench.sample_data import find_sample_data

    click.echo(f"msrgb-bench  {__version__}")
    click.echo(f"python       {platform.python_version()} ({sys.executable})")
    click.echo(f"torch        {_version_of('torch')}")
    click.echo(f"torchvision  {_version_of('torchvision')}")
    click.echo(f"torchgeo     {_version_of('torchgeo')}")
    click.echo(f"lightning    {_version_of('lightning')}")
    click.echo(f"rasterio     {_version_of('rasterio')}")
    click.echo(f"GDAL         {_version_of('rasterio', '__gdal_version__')}")
    try:
        import torch

        if torch.cuda.is_available():
            device = f"cuda ({torch.cuda.device_count()}x {torch.cuda.get_device_name(0)})"
        else:
            device = f"cpu ({torch.get_num_threads()} threads)"
    except Exception as exc:
        device = f"unknown ({type(exc).__name__})"
    click.echo(f"device       {device}")
    sample = find_sample_data()
    click.echo(f"sample data  {sample if sample else 'not found (set $MSRGB_SAMPLE_DATA)'}")


# --- dataset building (pipelines) -------------------------------------------------------------


def _parse_sources(values: tuple[str, ...]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise click.BadParameter(f"expected NAME=PATH, got {value!r}", param_hint="--source")
        parsed[name] = path
    return parsed


@main.command("build-dataset")
@click.option("--recipe", default="demo", show_default=True, help="Recipe name or YAML file.")
@click.option(
    "--out", default="data/demo", show_default=True, type=click.Path(), help="Dataset folder."
)
@click.option(
    "--source",
    "source_paths",
    multiple=True,
    metavar="NAME=PATH",
    help="Use files you already have for a source (archive, extracted archive or class folders).",
)
@click.option("--seed", type=int, default=None, help="Build seed (default: the recipe's).")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
@click.option(
    "--dask-scheduler",
    metavar="ADDRESS",
    default=None,
    help="Run the per-chip work on this Dask scheduler's workers instead of --workers "
    "(needs msrgb-bench[dask]; sources, cache and the output's parent on a shared filesystem).",
)
@click.option(
    "--size",
    default=None,
    help="Synthetic sources only: tiny, small, medium, eurosat or N per class.",
)
@click.option("--cache-dir", type=click.Path(), default=None, help="Download cache.")
@click.option("--pack", is_flag=True, help="Also write packed arrays for fast loading.")
@click.option(
    "--hide-test-labels",
    is_flag=True,
    help="Also write a public copy without test labels (OUT-public) and the private label file.",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def build_dataset_cmd(
    recipe: str, out: str, source_paths: tuple[str, ...], seed: int | None, workers: int,
    dask_scheduler: str | None, size: str | None, cache_dir: str | None, pack: bool,
    hide_test_labels: bool, quiet: bool,
) -> None:  # fmt: skip
    """Build an asymmetric MS/RGB dataset (default: the offline demo)."""
    from contextlib import nullcontext

    from msrgb_bench.errors import MSRGBError
    from msrgb_bench.pipelines.build import build_dataset

    if dask_scheduler and workers > 1:
        raise click.UsageError("give either --dask-scheduler or --workers, not both")
    size_value: str | int | None = int(size) if size and size.isdigit() else size
    try:
        if dask_scheduler:
            from msrgb_bench.pipelines.dask_mapper import dask_chip_mapper

            cluster: Any = dask_chip_mapper(dask_scheduler)
        else:
            cluster = nullcontext(None)
        with cluster as mapper:
            report = build_dataset(
                recipe, _path(out), sources=_parse_sources(source_paths), seed=seed,
                workers=workers, size=size_value, cache_dir=cache_dir, progress=not quiet,
                mapper=mapper,
            )  # fmt: skip
    except (MSRGBError, ImportError, ConnectionError) as exc:
        raise click.ClickException(str(exc)) from exc
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
    click.echo(f"built {report.total} samples ({counts}) in {report.seconds:.1f} s")
    if report.removed_duplicates:
        click.echo(f"removed {report.removed_duplicates} near-duplicates across splits/modalities")
    if report.dropped_unmapped:
        dropped = sum(report.dropped_unmapped.values())
        click.echo(f"dropped {dropped} samples of classes the recipe does not map")
    click.echo(f"wrote {report.out}")
    if pack:
        from msrgb_bench.data.packed import pack_dataset

        pack_dataset(report.out)
        click.echo(f"wrote packed arrays in {report.out}")
    if hide_test_labels:
        from msrgb_bench.leaderboard.release import release_dataset

        public = report.out.with_name(report.out.name + "-public")
        private = report.out.with_name(report.out.name + "-test-labels.parquet")
        release_dataset(report.out, public, private)
        click.echo(f"wrote {public} (no test labels) and {private} (keep private)")


@main.command("list-recipes")
def list_recipes_cmd() -> None:
    """List the recipes shipped with msrgb-bench."""
    from msrgb_bench.pipelines.recipe import list_recipes, load_recipe

    for name in list_recipes():
        recipe = load_recipe(name)
        sources = f"{'+'.join(recipe.teacher.sources)} -> {'+'.join(recipe.student.sources)}"
        click.echo(f"{name:12s} {len(recipe.classes):3d} classes  {sources}")


@main.command("list-sources")
def list_sources_cmd() -> None:
    """List the public datasets the pipelines know (names for --source)."""
    from msrgb_bench.pipelines.sources import list_sources, source_class

    for name in list_sources():
        cls = source_class(name)
        click.echo(f"{name:16s} {cls.modality:3s} {cls.license:14s} {cls.title}")


# --- dataset loading and the Hub --------------------------------------------------------------


@main.command("pack")
@click.argument("data_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--quiet", is_flag=True, help="No progress bars.")
def pack_cmd(data_dir: str, quiet: bool) -> None:
    """Write each modality and split of dataset DIR as one memory-mapped array (fast loading)."""
    from msrgb_bench.data.packed import pack_dataset
    from msrgb_bench.errors import MSRGBError

    try:
        written = pack_dataset(_path(data_dir), progress=not quiet)
    except MSRGBError as exc:
        raise click.ClickException(str(exc)) from exc
    for path in written:
        click.echo(f"wrote {path}")


@main.command("publish")
@click.argument("data_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--repo-id", required=True, metavar="ORG/NAME", help="Hub dataset repository.")
@click.option("--revision", default=None, metavar="BRANCH", help="Branch (default main).")
@click.option("--private", is_flag=True, help="Create the repository as private.")
@click.option("--endpoint", default=None, hidden=True, help="Hub URL (for mirrors and tests).")
def publish_cmd(
    data_dir: str, repo_id: str, revision: str | None, private: bool, endpoint: str | None
) -> None:
    """Verify dataset DIR and upload it to a Hugging Face Hub dataset repository."""
    from msrgb_bench.errors import MSRGBError
    from msrgb_bench.hub import publish

    try:
        url = publish(
            _path(data_dir), repo_id, revision=revision, private=private, endpoint=endpoint
        )
    except MSRGBError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"published {data_dir} to {repo_id}@{revision or 'main'}: {url}")


@main.command("download")
@click.option("--repo-id", default=None, metavar="ORG/NAME", help="Hub dataset repository.")
@click.option("--revision", default=None, metavar="REV", help="Tag, branch or commit to fetch.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Target folder.")
@click.option("--endpoint", default=None, hidden=True, help="Hub URL (for mirrors and tests).")
def download_cmd(repo_id: str | None, revision: str | None, out: str, endpoint: str | None) -> None:
    """Download a dataset from the Hub at a pinned revision and verify every file."""
    from msrgb_bench import hub
    from msrgb_bench.errors import MSRGBError

    repo = repo_id or hub.DEFAULT_REPO_ID
    rev = revision or hub.DEFAULT_REVISION
    try:
        path = hub.download(repo, rev, _path(out), endpoint=endpoint)
    except MSRGBError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"downloaded {repo}@{rev} to {path} (verified)")


# --- training ---------------------------------------------------------------------------------


def _training_options(func: Any) -> Any:
    """Add the options shared by ``train-teacher`` and ``distill`` (defaults: the paper's)."""
    options = [
        click.option("--epochs", type=int, default=200, show_default=True, help="Epochs."),
        click.option(
            "--batch-size", type=int, default=256, show_default=True,
            help="Global batch size (split evenly over DDP processes).",
        ),
        click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam LR."),
        click.option("--weight-decay", type=float, default=0.0, show_default=True),
        click.option("--seed", type=int, default=42, show_default=True, help="Training seed."),
        click.option("--out", required=True, type=click.Path(), help="Run folder to create."),
        click.option(
            "--devices", default="auto", show_default=True,
            help="Lightning devices: auto, a count (2) or ids (0,1).",
        ),
        click.option(
            "--strategy", default="auto", show_default=True,
            help="Lightning strategy: auto, ddp, ddp_spawn...",
        ),
        click.option(
            "--precision", default="32-true", show_default=True,
            help="Lightning precision: 32-true, bf16-mixed, 16-mixed...",
        ),
        click.option("--accelerator", default="auto", show_default=True, help="cpu, gpu, auto."),
        click.option("--num-workers", type=int, default=0, show_default=True, help="Workers."),
        click.option(
            "--train-batches", type=int, default=None,
            help="Train on at most this many shuffled batches per epoch (default: all).",
        ),
        click.option(
            "--precise-bn-batches", type=int, default=0, show_default=True,
            help="Recompute BatchNorm statistics over this many train batches before each "
            "validation (PreciseBN; 0: off, as in the paper).",
        ),
        click.option(
            "--augment/--no-augment", default=False, show_default=True,
            help="Random flips and 90-degree rotations of training batches (off in the paper).",
        ),
        click.option("--quiet", is_flag=True, help="No progress bar."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def _trainer_config(options: dict[str, Any]) -> Any:
    from msrgb_bench.engine.config import TrainerConfig

    return TrainerConfig(
        epochs=options["epochs"], batch_size=options["batch_size"], lr=options["lr"],
        weight_decay=options["weight_decay"], seed=options["seed"], augment=options["augment"],
        num_workers=options["num_workers"], accelerator=options["accelerator"],
        devices=options["devices"], strategy=options["strategy"], precision=options["precision"],
        train_batches=options["train_batches"],
        precise_bn_batches=options["precise_bn_batches"],
    )  # fmt: skip


def _parse_settings(values: tuple[str, ...]) -> dict[str, Any]:
    import json

    settings: dict[str, Any] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint="--set")
        try:
            settings[key] = json.loads(text)
        except json.JSONDecodeError:
            settings[key] = text
    return settings


def _echo_on_rank_zero(message: str) -> None:
    from lightning.pytorch.utilities import rank_zero_only

    if getattr(rank_zero_only, "rank", 0) == 0:
        click.echo(message)


@main.command("train-teacher")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--arch", required=True, help="Backbone (see list-models).")
@click.option("--bands", default=None, help="MS bands, comma-separated (default: the recipe's).")
@_training_options
def train_teacher_cmd(data: str, arch: str, bands: str | None, **options: Any) -> None:
    """Train an MS teacher (cross-entropy; BCE for a multi-label dataset)."""
    from msrgb_bench.engine import train_teacher
    from msrgb_bench.errors import MSRGBError

    band_list = tuple(b.strip() for b in bands.split(",") if b.strip()) if bands else None
    try:
        run = train_teacher(
            _path(data), arch, _path(options["out"]), bands=band_list,
            trainer=_trainer_config(options), progress=not options["quiet"],
        )  # fmt: skip
    except (MSRGBError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    _echo_on_rank_zero(f"wrote {run}")


@main.command("distill")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--teacher", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--method", required=True, help="Method (see list-methods) or X+plugin.")
@click.option("--student", required=True, help="Student backbone (see list-models).")
@click.option(
    "--preset", type=click.Choice(["paper", "original"]), default="paper", show_default=True,
    help="Method settings of the ACKD paper's code, or of the method's own paper.",
)  # fmt: skip
@click.option(
    "--set", "settings", multiple=True, metavar="KEY=VALUE",
    help="Change one method setting (JSON value), e.g. --set temperature=4.",
)  # fmt: skip
@click.option(
    "--matcher", type=click.Path(exists=True, file_okay=False), default=None,
    help="Matcher run (msrgb train-matcher) choosing SemBridge's initial pairs.",
)  # fmt: skip
@_training_options
def distill_cmd(
    data: str, teacher: str, method: str, student: str, preset: str,
    settings: tuple[str, ...], matcher: str | None, **options: Any,
) -> None:  # fmt: skip
    """Train an RGB student with a frozen MS teacher run and a distillation method."""
    from msrgb_bench.engine import distill
    from msrgb_bench.errors import MSRGBError

    try:
        run = distill(
            _path(data), _path(teacher), method, student, _path(options["out"]), preset=preset,
            overrides=_parse_settings(settings), trainer=_trainer_config(options),
            matcher=_path(matcher) if matcher else None, progress=not options["quiet"],
        )  # fmt: skip
    except (MSRGBError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    _echo_on_rank_zero(f"wrote {run}")


@main.command("train-matcher")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(), help="Run folder to create.")
@click.option("--epochs", type=int, default=100, show_default=True, help="Epochs.")
@click.option("--batch-size", type=int, default=64, show_default=True, help="Global batch size.")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="AdamW LR.")
@click.option("--weight-decay", type=float, default=1e-3, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True, help="Training seed.")
@click.option("--arch", default="resnet34", show_default=True, help="Backbone of both towers.")
@click.option(
    "--pseudo-rgb", type=click.Choice(["rgb", "first3"]), default="rgb", show_default=True,
    help="rgb: bands B04,B03,B02; first3: the first three stored bands (the released code).",
)  # fmt: skip
@click.option("--bands", default=None, help="MS tower bands, comma-separated (default: recipe's).")
@click.option("--accelerator", default="auto", show_default=True, help="cpu, gpu, auto.")
@click.option("--devices", default="auto", show_default=True, help="auto, a count or ids (0,1).")
@click.option("--strategy", default="auto", show_default=True, help="auto, ddp, ddp_spawn...")
@click.option("--precision", default="32-true", show_default=True, help="32-true, bf16-mixed...")
@click.option("--num-workers", type=int, default=0, show_default=True, help="Workers.")
@click.option("--train-batches", type=int, default=None, help="At most this many batches/epoch.")
@click.option("--precise-bn-batches", type=int, default=0, show_default=True, help="PreciseBN.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_matcher_cmd(
    data: str, out: str, bands: str | None, quiet: bool, **options: Any
) -> None:  # fmt: skip
    """Train SemBridge's MS / pseudo-RGB matcher (SSM) on the MS train split."""
    from msrgb_bench.baselines.sembridge.matcher_training import train_matcher
    from msrgb_bench.errors import MSRGBError

    band_list = tuple(b.strip() for b in bands.split(",") if b.strip()) if bands else None
    try:
        run = train_matcher(
            _path(data), _path(out), bands=band_list, progress=not quiet, **options
        )  # fmt: skip
    except (MSRGBError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    _echo_on_rank_zero(f"wrote {run}")


@main.command("predict")
@click.option("--run", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help=".csv or .parquet")
@click.option(
    "--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True,
    help="best: best on the val split; last: after the final epoch.",
)  # fmt: skip
@click.option("--batch-size", type=int, default=256, show_default=True)
@click.option("--num-workers", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1...")
def predict_cmd(
    run: str, data: str, split: str, out: str, checkpoint: str, batch_size: int,
    num_workers: int, device: str,
) -> None:  # fmt: skip
    """Write a run's predictions on a split in the leaderboard's submission format."""
    from msrgb_bench.engine import predict
    from msrgb_bench.errors import MSRGBError

    try:
        path = predict(
            _path(run), _path(data), split, _path(out), checkpoint=checkpoint,
            batch_size=batch_size, num_workers=num_workers, device=device,
        )  # fmt: skip
    except (MSRGBError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {path} and {path.name}.meta.json")


@main.command("list-models")
def list_models_cmd() -> None:
    """List the backbones with the width of their last-stage tokens."""
    from msrgb_bench.models import list_models
    from msrgb_bench.models.registry import MODELS

    for name in list_models():
        click.echo(f"{name:14s} tokens {MODELS.get(name).token_dim}-d, embedding 512-d")


@main.command("list-methods")
def list_methods_cmd() -> None:
    """List the distillation methods (each has a ``paper`` and an ``original`` preset)."""
    from msrgb_bench.baselines import get_method, list_methods

    for name in list_methods():
        spec = get_method(name)
        cls = spec.term_cls or spec.distiller_cls
        doc = importlib.import_module(cls.__module__).__doc__ or ""
        summary = doc.strip().splitlines()[0] if doc.strip() else ""
        click.echo(f"{name:10s} {summary.removeprefix(f'``{name}``: ')}")


# --- leaderboard ------------------------------------------------------------------------------


@main.command()
@click.argument("preds", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--data",
    "data_dir",
    type=click.Path(exists=True, file_okay=False),
    help="Dataset folder whose labels to score against.",
)
@click.option(
    "--labels",
    "labels_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Private label file to score against (instead of --data).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the scores as one JSON object.")
@click.option("--bootstrap", default=1000, show_default=True, help="Bootstrap replicates.")
@click.option("--seed", default=0, show_default=True, help="Bootstrap seed.")
def evaluate(
    preds: str,
    data_dir: str | None,
    labels_file: str | None,
    as_json: bool,
    bootstrap: int,
    seed: int,
) -> None:
    """Validate and score the submission PREDS (its .meta.json sidecar beside it)."""
    import json

    from msrgb_bench.errors import MSRGBError
    from msrgb_bench.leaderboard.board import format_scores
    from msrgb_bench.leaderboard.metrics import score
    from msrgb_bench.leaderboard.submission import read_submission, validate_submission
    from msrgb_bench.leaderboard.truth import GroundTruth, read_private_labels

    if (data_dir is None) == (labels_file is None):
        raise click.UsageError("give exactly one of --data DIR or --labels FILE")
    try:
        truth = (
            GroundTruth.from_dataset(_path(data_dir))
            if data_dir is not None
            else read_private_labels(_path(str(labels_file)))
        )
        frame, meta = read_submission(_path(preds))
        aligned = validate_submission(frame, meta, truth, source=preds)
        scores = score(aligned, n_boot=bootstrap, seed=seed)
    except MSRGBError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(scores.to_dict(), indent=2))
    else:
        click.echo(format_scores(scores.to_dict()), nl=False)


@main.command()
@click.argument("src", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "public_dir", required=True, help="Folder for the public copy.")
@click.option("--labels", "private_labels", required=True, help="Private label file to write.")
def release(src: str, public_dir: str, private_labels: str) -> None:
    """Write a public copy of dataset SRC without test labels, and the private label file."""
    from msrgb_bench.errors import MSRGBError
    from msrgb_bench.leaderboard.release import release_dataset

    try:
        result = release_dataset(_path(src), _path(public_dir), _path(private_labels))
    except MSRGBError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"public copy   {result.public_dir} ({result.hidden_rows} labels hidden)")
    click.echo(f"private file  {result.private_labels} (keep it on the leaderboard server)")
    click.echo(f"dataset hash  {result.dataset_hash}")
    if result.skipped_files:
        click.echo(f"not copied    {len(result.skipped_files)} file(s) the manifest does not list")


@main.command("serve-leaderboard")
@click.option(
    "--labels",
    "labels_files",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Private label file (repeat for several datasets).",
)
@click.option("--db", default="leaderboard.sqlite", show_default=True, help="SQLite store.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--interval-s", default=3600.0, show_default=True, help="Seconds between team submissions."
)
@click.option("--max-mb", default=64.0, show_default=True, help="Largest predictions file.")
@click.option("--bootstrap", default=1000, show_default=True, help="Bootstrap replicates.")
@click.option("--reference/--no-reference", default=True, help="Show the paper's numbers.")
def serve_leaderboard(
    labels_files: tuple[str, ...],
    db: str,
    host: str,
    port: int,
    interval_s: float,
    max_mb: float,
    bootstrap: int,
    reference: bool,
) -> None:
    """Serve the leaderboard: take submissions, score them, show the page and JSON."""
    from msrgb_bench.errors import MSRGBError
    from msrgb_bench.leaderboard.server import ServerConfig, run_server

    config = ServerConfig(
        labels=tuple(_path(p) for p in labels_files),
        db=_path(db),
        max_bytes=int(max_mb * 1024 * 1024),
        interval_s=interval_s,
        n_boot=bootstrap,
        show_reference=reference,
    )
    try:
        run_server(config, host=host, port=port)
    except MSRGBError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@click.argument("preds", type=click.Path(exists=True, dir_okay=False))
@click.option("--server", required=True, help="Leaderboard URL, e.g. http://127.0.0.1:8000.")
@click.option("--token", required=True, envvar="MSRGB_TOKEN", help="Team token ($MSRGB_TOKEN).")
@click.option("--json", "as_json", is_flag=True, help="Print the server's answer as JSON.")
def submit(preds: str, server: str, token: str, as_json: bool) -> None:
    """Submit PREDS (and its .meta.json sidecar) to a leaderboard server and print the score."""
    import json

    from msrgb_bench.errors import MSRGBError
    from msrgb_bench.leaderboard.board import format_scores
    from msrgb_bench.leaderboard.client import submit as submit_file

    try:
        answer = submit_file(_path(preds), server, token)
    except MSRGBError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(answer, indent=2))
    else:
        click.echo(f"submission {answer['submission_id']} of team {answer['team']}: scored")
        click.echo(format_scores(answer["scores"]), nl=False)


@main.group("leaderboard", invoke_without_command=True)
@click.option("--server", default=None, help="Read the board from this server's URL.")
@click.option("--db", default=None, type=click.Path(dir_okay=False), help="Read a store file.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "csv", "json"]),
    default="markdown",
    show_default=True,
)
@click.pass_context
def leaderboard(ctx: click.Context, server: str | None, db: str | None, fmt: str) -> None:
    """Print the leaderboard (from --server or --db), or manage teams (subcommands)."""
    if ctx.invoked_subcommand is not None:
        return
    from msrgb_bench.errors import MSRGBError
    from msrgb_bench.leaderboard.board import build_board, format_board
    from msrgb_bench.leaderboard.client import fetch_board
    from msrgb_bench.leaderboard.reference import reported_rows
    from msrgb_bench.leaderboard.store import Store

    if (server is None) == (db is None):
        raise click.UsageError("give exactly one of --server URL or --db FILE")
    try:
        if server is not None:
            board = fetch_board(server)
        else:
            if not _path(str(db)).is_file():
                raise click.ClickException(f"{db}: no such leaderboard store")
            subs = Store(_path(str(db))).submissions(status="scored")
            datasets = {s.meta["dataset"] for s in subs if s.meta}
            board = build_board(subs, reported_rows(datasets))
    except MSRGBError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(format_board(board, fmt), nl=False)


@leaderboard.command("add-team")
@click.argument("name")
@click.option("--db", required=True, type=click.Path(dir_okay=False), help="The store file.")
def add_team(name: str, db: str) -> None:
    """Register team NAME and print its token (shown only this once; only a hash is kept)."""
    from msrgb_bench.errors import MSRGBError
    from msrgb_bench.leaderboard.store import Store

    try:
        token = Store(_path(db)).add_team(name)
    except MSRGBError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"team {name} registered; its token (keep it secret, it is not shown again):")
    click.echo(token)


# --- benchmark --------------------------------------------------------------------------------


def _split_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@main.command("benchmark")
@click.option("--data", type=click.Path(exists=True, file_okay=False), help="Dataset folder.")
@click.option(
    "--pairs", default="R/R", show_default=True,
    help="Teacher/student pairs, comma-separated: R=resnet34, M=mobilenetv2, S=shufflenetv2.",
)  # fmt: skip
@click.option("--methods", default=None, help="Methods, comma-separated (none,kd,dkd+sembridge).")
@click.option("--seeds", default="0,1,2", show_default=True, help="Student seeds.")
@click.option(
    "--protocol", default=None,
    help="Shipped protocol (paper: GPU, mini: 2 CPU cores; see --list-protocols) or a YAML file.",
)  # fmt: skip
@click.option("--out", type=click.Path(file_okay=False), help="Results folder (resumable).")
@click.option("--accelerator", default="auto", show_default=True, help="cpu, gpu, auto.")
@click.option("--devices", default="auto", show_default=True, help="auto, a count or ids (0,1).")
@click.option("--strategy", default="auto", show_default=True, help="auto, ddp, ddp_spawn...")
@click.option("--precision", default="32-true", show_default=True, help="32-true, bf16-mixed...")
@click.option("--num-workers", type=int, default=0, show_default=True, help="Loader workers.")
@click.option(
    "--list-protocols", "show_protocols", is_flag=True, help="List the shipped protocols and exit."
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def benchmark_cmd(
    data: str | None, pairs: str, methods: str | None, seeds: str, protocol: str | None,
    out: str | None, accelerator: str, devices: str, strategy: str, precision: str,
    num_workers: int, show_protocols: bool, quiet: bool,
) -> None:  # fmt: skip
    """Train, predict and score every pair x method x seed; write tables and plots to --out.

    Finished cells are skipped, so a killed run continues where it stopped.
    """
    import shlex

    from msrgb_bench.benchmark.protocol import list_protocols, load_protocol
    from msrgb_bench.errors import MSRGBError

    if show_protocols:
        for name in list_protocols():
            loaded = load_protocol(name)
            click.echo(f"{name:8s} {loaded.description}\n{'':8s} file: {loaded.source}")
        return
    if data is None or out is None or methods is None or protocol is None:
        raise click.UsageError("--data, --out, --methods and --protocol are required")
    from msrgb_bench.benchmark.runner import Execution, run_benchmark

    execution = Execution(
        accelerator=accelerator, devices=devices, strategy=strategy, precision=precision,
        num_workers=num_workers,
    )  # fmt: skip
    command = shlex.join(
        ["msrgb", "benchmark", "--data", data, "--pairs", pairs, "--methods", methods,
         "--seeds", seeds, "--protocol", protocol, "--out", out, "--accelerator", accelerator,
         "--devices", devices, "--strategy", strategy, "--precision", precision]
    )  # fmt: skip
    try:
        report = run_benchmark(
            _path(data), _path(out), pairs=_split_list(pairs), methods=_split_list(methods),
            seeds=_split_list(seeds), protocol=protocol, execution=execution,
            progress=not quiet, command=command,
        )  # fmt: skip
    except (MSRGBError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    _echo_on_rank_zero(report.summary_markdown)
    _echo_on_rank_zero(
        f"{report.cells} cells: {report.skipped} already done, {report.trained} trained, "
        f"{report.rescored} re-scored; {report.teachers_trained} teacher(s) and "
        f"{report.matchers_trained} matcher(s) trained; results in {report.results}"
    )


def _path(value: str) -> Path:
    return Path(value).expanduser()


if __name__ == "__main__":  # pragma: no cover
    main()
