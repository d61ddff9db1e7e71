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


# --- dataset loading and the Hub --------------------------------------------------------------


# --- training ---------------------------------------------------------------------------------


# --- leaderboard ------------------------------------------------------------------------------


def _path(value: str) -> Path:
    return Path(value).expanduser()


if __name__ == "__main__":  # pragma: no cover
    main()
