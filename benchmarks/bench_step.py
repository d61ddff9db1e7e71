"""Training-step cost of each method, and the engine's throughput against a bare PyTorch loop.

Part 1 times one optimisation step (forward, backward, Adam) of every registered method on every
teacher/student pair and prints it relative to ``none`` (labels only, no teacher) on that pair.

Part 2 trains the same distiller (``kd`` on ``--engine-pair``) on the same synthetic data three
ways and prints images/s: a bare loop over tensors already on the device ("preloaded", the upper
bound), a bare loop reading the same ``DataLoader`` as the engine ("bare+loader"), and the engine
(Lightning ``Trainer`` + ``DistillationModule`` + that loader). engine/bare+loader is Lightning's
cost, engine/preloaded that of Lightning and the data path together (goal: >= 0.9x). Images are
held as the files store them (uint8 RGB, int16 MS, converted on the device) and as float32. Every
figure excludes a warm-up epoch.

    python benchmarks/bench_step.py                      # CPU-sized defaults
    python benchmarks/bench_step.py --device cuda --size 64 --batch 256 --precision bf16-mixed
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L  # noqa: N812
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler

from msrgb_bench.baselines import Distiller, create_method, list_methods
from msrgb_bench.engine.config import TrainerConfig
from msrgb_bench.engine.modules import DistillationModule
from msrgb_bench.engine.trainer import build_trainer
from msrgb_bench.models import create_model
from msrgb_bench.models.pairs import PAPER_PAIRS, parse_pair

NUM_CLASSES = 10
MS_CHANS = 13


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, precision: str) -> Any:
    if precision.startswith("bf16"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision.startswith("16"):
        return torch.autocast(device.type, dtype=torch.float16)
    return torch.autocast(device.type, enabled=False)


def make_distiller(method: str, pair: str) -> Distiller:
    teacher_arch, student_arch = parse_pair(pair).teacher, parse_pair(pair).student
    torch.manual_seed(0)
    teacher = create_model(teacher_arch, in_chans=MS_CHANS, num_classes=NUM_CLASSES)
    student = create_model(student_arch, in_chans=3, num_classes=NUM_CLASSES)
    distiller = create_method(method, student, teacher)
    distiller.epoch = 25  # past every warm-up: every term is active
    return distiller


def time_steps(
    distiller: Distiller,
    batch: dict[str, torch.Tensor],
    steps: int,
    warmup: int,
    device: torch.device,
    precision: str,
) -> float:
    """Return the median seconds of one optimisation step."""
    distiller.to(device).train()
    optimiser = torch.optim.Adam(distiller.trainable_parameters(), lr=1e-3)
    times = []
    for i in range(warmup + steps):
        synchronize(device)
        start = time.perf_counter()
        with autocast(device, precision):
            loss = torch.stack(list(distiller.forward_train(batch).values())).sum()
        loss.backward()
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)
        synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def bench_methods(args: argparse.Namespace, device: torch.device) -> None:
    gen = torch.Generator().manual_seed(0)
    batch = {
        "image": torch.randn(args.batch, 3, args.size, args.size, generator=gen),
        "teacher_image": torch.randn(args.batch, MS_CHANS, args.size, args.size, generator=gen),
        "label": torch.randint(0, NUM_CLASSES, (args.batch,), generator=gen),
    }
    batch = {k: v.to(device) for k, v in batch.items()}
    methods = [m for m in list_methods() if m != "none"]
    print(f"\n== step time relative to 'none' (batch {args.batch}, {args.size}x{args.size}) ==")
    print(f"{'pair':5s} {'none ms':>8s} " + " ".join(f"{m:>9s}" for m in methods))
    for pair in args.pairs:
        base = time_steps(
            make_distiller("none", pair), batch, args.steps, args.warmup, device, args.precision
        )
        ratios = []
        for method in methods:
            seconds = time_steps(
                make_distiller(method, pair), batch, args.steps, args.warmup, device, args.precision
            )
            ratios.append(seconds / base)
        print(f"{pair:5s} {base * 1e3:8.1f} " + " ".join(f"{r:8.2f}x" for r in ratios))


class InMemoryPairs(Dataset[dict[str, torch.Tensor]]):
    """Paired samples held in host memory; indexing with a list of indices returns a batch.

    ``native`` stores images as the files hold them (RGB uint8, MS int16) and
    :func:`to_float` converts them on the device, as the msrgb data module normalises there;
    otherwise they are float32 (4x / 2x the bytes through the loader and the host-device copy).
    """

    def __init__(self, n: int, size: int, native: bool) -> None:
        gen = torch.Generator().manual_seed(1)
        self.images = torch.randint(0, 256, (n, 3, size, size), generator=gen, dtype=torch.uint8)
        self.teacher_images = torch.randint(
            0, 10000, (n, MS_CHANS, size, size), generator=gen, dtype=torch.int16
        )
        if not native:
            self.images = self.images.float()
            self.teacher_images = self.teacher_images.float()
        self.labels = torch.randint(0, NUM_CLASSES, (n,), generator=gen)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, indices: list[int]) -> dict[str, torch.Tensor]:  # type: ignore[override]
        idx = torch.as_tensor(indices)
        return {
            "image": self.images[idx],
            "teacher_image": self.teacher_images[idx],
            "label": self.labels[idx],
        }


def to_float(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Scale images to float on the device (uint8 / 255, int16 / 10000; float32 unchanged)."""
    out = dict(batch)
    if batch["image"].dtype == torch.uint8:
        out["image"] = batch["image"].float().div_(255.0)
    if batch["teacher_image"].dtype == torch.int16:
        out["teacher_image"] = batch["teacher_image"].float().div_(10000.0)
    return out


def make_loader(data: InMemoryPairs, args: argparse.Namespace) -> DataLoader[Any]:
    """Batches from a shuffled batch sampler: one gather per batch, no per-sample collate."""
    sampler = BatchSampler(RandomSampler(data), batch_size=args.batch, drop_last=True)
    return DataLoader(
        data,
        sampler=sampler,
        batch_size=None,
        num_workers=args.workers,
        pin_memory=args.device.startswith("cuda"),
        persistent_workers=args.workers > 0,
    )


class LoaderData(L.LightningDataModule):
    """The loader of :func:`make_loader`, converted to float after the transfer to the device."""

    def __init__(self, loader: DataLoader[Any]) -> None:
        super().__init__()
        self.loader = loader

    def train_dataloader(self) -> DataLoader[Any]:
        return self.loader

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return to_float(batch)


class EpochClock(Callback):
    """Seconds of every training epoch."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        synchronize(pl_module.device)
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        synchronize(pl_module.device)
        self.seconds.append(time.perf_counter() - self._start)


def engine_images_per_second(
    make: Callable[[], Distiller], data: InMemoryPairs, args: argparse.Namespace
) -> float:
    """Images/s of the engine: Trainer + DistillationModule + the loader."""
    loader = make_loader(data, args)
    module = DistillationModule(make(), lr=1e-3)
    clock = EpochClock()
    accelerator = "gpu" if args.device.startswith("cuda") else "cpu"
    config = TrainerConfig(
        epochs=args.epochs, accelerator=accelerator, devices="1", precision=args.precision
    )
    with tempfile.TemporaryDirectory() as root, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = build_trainer(config, Path(root), [clock], progress=False)
        trainer.fit(module, datamodule=LoaderData(loader))
    steps = len(loader) * (args.epochs - 1)
    return steps * args.batch / sum(clock.seconds[1:])


def bare_images_per_second(
    make: Callable[[], Distiller],
    data: InMemoryPairs,
    args: argparse.Namespace,
    preloaded: bool,
) -> float:
    """Images/s of a plain loop, reading the same loader or tensors already on the device."""
    device = torch.device(args.device)
    distiller = make().to(device).train()
    optimiser = torch.optim.Adam(distiller.trainable_parameters(), lr=1e-3)
    loader = make_loader(data, args)
    on_device = {
        "image": data.images.to(device),
        "teacher_image": data.teacher_images.to(device),
        "label": data.labels.to(device),
    }
    seconds, images = 0.0, 0
    for epoch in range(args.epochs):
        synchronize(device)
        start = time.perf_counter()
        if preloaded:
            order = torch.randperm(len(data), device=device).split(args.batch)
            batches: Any = ({k: v[idx] for k, v in on_device.items()} for idx in order[:-1])
        else:
            batches = (
                {k: v.to(device, non_blocking=True) for k, v in batch.items()} for batch in loader
            )
        count = 0
        for batch in batches:
            with autocast(device, args.precision):
                terms = distiller.forward_train(to_float(batch))
                loss = torch.stack(list(terms.values())).sum()
            loss.backward()
            optimiser.step()
            optimiser.zero_grad(set_to_none=True)
            count += args.batch
        synchronize(device)
        if epoch > 0:
            seconds += time.perf_counter() - start
            images += count
    return images / seconds


def bench_engine(args: argparse.Namespace) -> None:
    template = make_distiller("kd", args.engine_pair)

    def make() -> Distiller:
        return copy.deepcopy(template)

    print(
        f"\n== engine vs bare loop (kd, {args.engine_pair}, batch {args.batch}, "
        f"{args.size}x{args.size}, {args.engine_batches} batches/epoch, {args.workers} workers, "
        f"{args.precision}) =="
    )
    print(f"{'images as':14s} {'preloaded':>10s} {'bare+loader':>12s} {'engine':>9s}"
          f"  {'engine/bare+loader':>18s} {'engine/preloaded':>16s}")  # fmt: skip
    for native in (True, False):
        data = InMemoryPairs(args.batch * args.engine_batches + 1, args.size, native)
        preloaded = bare_images_per_second(make, data, args, preloaded=True)
        bare = bare_images_per_second(make, data, args, preloaded=False)
        engine = engine_images_per_second(make, data, args)
        kind = "uint8/int16" if native else "float32"
        print(
            f"{kind:14s} {preloaded:10.1f} {bare:12.1f} {engine:9.1f}"
            f"  {engine / bare:17.3f}x {engine / preloaded:15.3f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=32, help="Image side in pixels.")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5, help="Timed steps per method.")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--pairs", nargs="+", default=list(PAPER_PAIRS), choices=PAPER_PAIRS)
    parser.add_argument("--engine-pair", default="M/M", choices=PAPER_PAIRS)
    parser.add_argument("--engine-batches", type=int, default=20, help="Batches per epoch.")
    parser.add_argument("--epochs", type=int, default=3, help="Engine epochs (first is warm-up).")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (engine).")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default).")
    parser.add_argument("--skip-methods", action="store_true", help="Only run part 2.")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {name}, torch {torch.__version__}, precision {args.precision}")
    if not args.skip_methods:
        bench_methods(args, device)
    bench_engine(args)


if __name__ == "__main__":
    main()
