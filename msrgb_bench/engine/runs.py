"""Run folders: what a training run writes and how later commands read it back.

Layout of a finished run::

    RUN/config.json                  {"config": {...}, "config_hash": "..."} (see engine.config)
    RUN/run.json                     seed, versions, code version, paths, timing, best epoch...
    RUN/metrics.csv, metrics.json    one row per epoch (train losses, val/acc, val/loss, seconds)
    RUN/checkpoints/best.safetensors  best on the validation split (never the test split)
    RUN/checkpoints/last.safetensors  after the last epoch

A run is trained into ``.RUN.partial`` beside ``RUN`` and moved into place when it finishes, so
``RUN`` only ever holds a complete run.
"""

from __future__ import annotations

import importlib
import json
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from msrgb_bench import __version__
from msrgb_bench.atomic import replace_dir, write_text_atomic
from msrgb_bench.engine.checkpoint import (
    EXTRA_PREFIX,
    MODEL_PREFIX,
    load_checkpoint,
    load_into,
    strip_prefix,
)
from msrgb_bench.engine.config import (
    RUN_KINDS,
    STUDENT_KIND,
    TEACHER_KIND,
    RunConfig,
    config_hash,
    config_to_dict,
)
from msrgb_bench.errors import RunFolderError
from msrgb_bench.models import Backbone, create_model

CONFIG_NAME = "config.json"
RUN_NAME = "run.json"
METRICS_CSV = "metrics.csv"
METRICS_JSON = "metrics.json"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINTS = ("best", "last")
RUN_FORMAT = "msrgb-run/1"


def staging_dir(out: Path) -> Path:
    """Return the folder a run into ``out`` is written to before it is moved into place."""
    return out.with_name(f".{out.name}.partial")


def checkpoint_path(run: Path, which: str) -> Path:
    """Return the path of checkpoint ``which`` (``best`` or ``last``) of a run folder."""
    if which not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {', '.join(CHECKPOINTS)}, got {which!r}")
    return run / CHECKPOINT_DIR / f"{which}.safetensors"


def check_new_run(out: Path) -> None:
    """Refuse to train into an existing, non-empty folder.

    Raises:
        RunFolderError: If ``out`` exists and is not an empty folder.
    """
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RunFolderError(out, "already exists; choose another --out or delete it first")


def versions() -> dict[str, str]:
    """Return the versions of Python, the platform and the libraries that shape training."""
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("msrgb_bench", "torch", "torchvision", "lightning", "torchgeo", "numpy", "kornia"):
        try:
            found[name] = str(importlib.import_module(name).__version__)
        except (ImportError, AttributeError):
            found[name] = "not installed"
    return found


def code_version() -> str:
    """Return the package version, plus the git commit when run from a checkout."""
    here = Path(__file__).resolve().parent
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return __version__
    commit = result.stdout.strip()
    return f"{__version__}+g{commit}" if result.returncode == 0 and commit else __version__


def write_config(folder: Path, config: RunConfig) -> str:
    """Write ``config.json`` into ``folder`` and return the config hash."""
    data = config_to_dict(config)
    digest = config_hash(data)
    body = {"config": data, "config_hash": digest}
    write_text_atomic(folder / CONFIG_NAME, json.dumps(body, indent=2, sort_keys=True) + "\n")
    return digest


def finish_run(staging: Path, out: Path, run_info: dict[str, Any]) -> Path:
    """Write ``run.json`` into the staging folder and move it to ``out``.

    Raises:
        RunFolderError: If a checkpoint is missing (the run did not complete an epoch).
    """
    for which in CHECKPOINTS:
        if not checkpoint_path(staging, which).is_file():
            raise RunFolderError(staging, f"no {which} checkpoint was written")
    body = {"format": RUN_FORMAT, **run_info}
    write_text_atomic(staging / RUN_NAME, json.dumps(body, indent=2, sort_keys=True) + "\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    replace_dir(staging, out)
    return out


@dataclass(frozen=True)
class Run:
    """A finished run folder, read back.

    Attributes:
        path: The folder.
        config: The resolved config (``config.json``'s ``config``).
        config_hash: Its hash, as recorded and re-checked.
        info: ``run.json``.
    """

    path: Path
    config: dict[str, Any]
    config_hash: str
    info: dict[str, Any]

    @property
    def kind(self) -> str:
        """``"teacher"``, ``"student"`` or ``"matcher"``."""
        return str(self.config["kind"])

    @property
    def arch(self) -> str:
        """The run's backbone (the student's for a student run)."""
        return str(self.config["arch"])

    @property
    def in_chans(self) -> int:
        """Input channels of the run's backbone."""
        bands = self.config["bands"] if self.kind == TEACHER_KIND else self.config["rgb_bands"]
        return len(bands)

    @property
    def classes(self) -> list[str]:
        """Class names in index order."""
        return list(self.config["dataset"]["classes"])

    def build_model(self, which: str = "best") -> Backbone:
        """Return the run's backbone with the weights of checkpoint ``which``, in eval mode.

        Raises:
            RunFolderError: If the checkpoint is missing, unreadable or does not fit.
        """
        path = checkpoint_path(self.path, which)
        tensors, metadata = load_checkpoint(path)
        if metadata.get("config_hash") != self.config_hash:
            raise RunFolderError(path, "belongs to another run (config hash differs)")
        model = create_model(self.arch, in_chans=self.in_chans, num_classes=len(self.classes))
        load_into(model, strip_prefix(tensors, MODEL_PREFIX), path)
        return model.eval()

    def extra_state(self, which: str = "best") -> dict[str, Any]:
        """Return the saved state of the distiller's extra modules (empty for teachers)."""
        tensors, _ = load_checkpoint(checkpoint_path(self.path, which))
        return strip_prefix(tensors, EXTRA_PREFIX)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise RunFolderError(path, "missing; is this a finished msrgb run folder?")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFolderError(path, f"not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise RunFolderError(path, "must hold a JSON object")
    return data


def load_run(path: str | Path, kind: str | None = None) -> Run:
    """Read a finished run folder.

    Args:
        path: The run folder.
        kind: Require this kind (``"teacher"``, ``"student"`` or ``"matcher"``); ``None``
            accepts a teacher or a student run.

    Raises:
        RunFolderError: If the folder is not a finished run, its config was edited (hash
            mismatch), or it is of the wrong kind.
    """
    path = Path(path)
    if not path.is_dir():
        raise RunFolderError(path, "run folder not found")
    body = _read_json(path / CONFIG_NAME)
    info = _read_json(path / RUN_NAME)
    config = body.get("config")
    if not isinstance(config, dict) or config.get("kind") not in RUN_KINDS:
        raise RunFolderError(path / CONFIG_NAME, f"has no {' or '.join(RUN_KINDS)} 'config' object")
    digest = config_hash(config)
    if body.get("config_hash") != digest:
        raise RunFolderError(path / CONFIG_NAME, "config_hash does not match the config (edited?)")
    wanted = (kind,) if kind is not None else (TEACHER_KIND, STUDENT_KIND)
    if config["kind"] not in wanted:
        raise RunFolderError(
            path, f"is a {config['kind']} run; a {' or '.join(wanted)} run is needed here"
        )
    return Run(path=path, config=config, config_hash=digest, info=info)
