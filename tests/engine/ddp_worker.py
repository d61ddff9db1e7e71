"""Train a tiny distiller with two CPU processes (DDP, gloo) and save each rank's weights.

Run by ``test_ddp.py`` as ``python ddp_worker.py OUT STRATEGY``; Lightning's ``ddp`` strategy
starts the second process by running this script again.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import lightning as L  # noqa: N812
import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_fixtures import MS_CHANS, NUM_CLASSES, TinyDataModule

from msrgb_bench.baselines import create_method
from msrgb_bench.engine.config import TrainerConfig
from msrgb_bench.engine.modules import DistillationModule
from msrgb_bench.engine.trainer import build_trainer
from msrgb_bench.models import create_model


def main(out: Path, strategy: str) -> None:
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    L.seed_everything(0, verbose=False)
    student = create_model("shufflenetv2", in_chans=3, num_classes=NUM_CLASSES)
    teacher = create_model("shufflenetv2", in_chans=MS_CHANS, num_classes=NUM_CLASSES)
    distiller = create_method("ctkd", student, teacher)
    module = DistillationModule(distiller, lr=1e-2)
    initial = {k: v.detach().clone() for k, v in distiller.named_parameters() if v.requires_grad}
    config = TrainerConfig(epochs=2, accelerator="cpu", devices="2", strategy=strategy)
    trainer = build_trainer(config, out, progress=False)
    trainer.fit(module, datamodule=TinyDataModule(n_train=16, n_val=8, batch_size=4))
    final = {k: v.detach() for k, v in distiller.named_parameters() if v.requires_grad}
    tensors = {f"final.{k}": v.contiguous() for k, v in final.items()}
    tensors.update({f"initial.{k}": v.contiguous() for k, v in initial.items()})
    meta = {"world_size": str(trainer.world_size)}
    save_file(tensors, str(out / f"rank{trainer.global_rank}.safetensors"), metadata=meta)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
