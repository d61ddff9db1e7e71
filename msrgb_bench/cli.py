"""The ``msrgb`` command line: a thin click layer that parses arguments and calls the library.

Heavy libraries (torch, torchgeo, rasterio) are imported inside the commands, never at module
level, so ``msrgb --help`` answers at once.
"""

from __future__ import annotations

import importlib
import platform
import sys
from pathlib import Path

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
    size: str | None, cache_dir: str | None, pack: bool, hide_test_labels: bool, quiet: bool,
) -> None:  # fmt: skip
    """Build an asymmetric MS/RGB dataset (default: the offline demo)."""
    from msrgb_bench.errors import MSRGBError
    from msrgb_bench.pipelines.build import build_dataset

    size_value: str | int | None = int(size) if size and size.isdigit() else size
    try:
        report = build_dataset(
            recipe, _path(out), sources=_parse_sources(source_paths), seed=seed, workers=workers,
            size=size_value, cache_dir=cache_dir, progress=not quiet,
        )  # fmt: skip
    except MSRGBError as exc:
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


# --- leaderboard ------------------------------------------------------------------------------


def _path(value: str) -> Path:
    return Path(value).expanduser()


if __name__ == "__main__":  # pragma: no cover
    main()
