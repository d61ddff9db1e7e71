"""The evaluator never imports training code (it reads only the dataset contract)."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN_ROOTS = ("torch", "torchvision", "torchgeo", "lightning", "kornia")
FORBIDDEN_PACKAGES = (
    "msrgb_bench.engine",
    "msrgb_bench.models",
    "msrgb_bench.baselines",
    "msrgb_bench.pipelines",
)
MODULES = ("board", "client", "metrics", "page", "release", "server", "store", "submission")


def test_leaderboard_modules_import_no_training_code() -> None:
    code = (
        "import importlib, json, sys\n"
        f"for name in {MODULES!r}:\n"
        "    importlib.import_module('msrgb_bench.leaderboard.' + name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = json.loads(out.stdout)
    assert "msrgb_bench.leaderboard.server" in loaded
    bad = [
        m for m in loaded if m.split(".")[0] in FORBIDDEN_ROOTS or m.startswith(FORBIDDEN_PACKAGES)
    ]
    assert bad == []
