"""Two CPU processes with DDP (gloo) end with identical weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.mark.slow
def test_two_ddp_processes_agree(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, str(WORKER), str(tmp_path), "ddp"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in (0, 1)]
    with safe_open(str(tmp_path / "rank1.safetensors"), framework="pt") as handle:
        assert handle.metadata()["world_size"] == "2"

    finals = [{k: v for k, v in state.items() if k.startswith("final.")} for state in ranks]
    assert finals[0].keys() == finals[1].keys()
    assert "final.term.temperature_logit" in finals[0]
    for key in finals[0]:
        torch.testing.assert_close(finals[0][key], finals[1][key], rtol=0, atol=0, msg=key)
    changed = [
        not torch.equal(ranks[0][key], ranks[0][key.replace("final.", "initial.", 1)])
        for key in finals[0]
    ]
    assert sum(changed) > len(changed) // 2
    assert changed[list(finals[0]).index("final.term.temperature_logit")]
