"""Training throughput (images/s) of ``Trainer.fit``: tensor pool vs Dataset pool vs Dataset with DataLoader workers.

MNIST-sized synthetic data (``--n`` seeded uint8 images of 1 x 28 x 28, ten
classes), all of them labeled, a ``SmallCNN``, ``--epochs`` epochs of batches
of ``--batch-size``.  Three ways to hold the pool:

* ``tensor``: one float tensor ``N x 1 x 28 x 28`` (the fast path: a batch is
  one indexing operation);
* ``dataset``: a map-style Dataset that decodes one uint8 image per item (as
  torchvision's MNIST does), read in the training process;
* ``dataset+workers``: the same Dataset read (and augmented) by
  ``TrainConfig.num_workers`` DataLoader workers.

With ``--augment`` every sample gets a seeded random shift (pad 2, crop 28).
Images per second = labeled samples x epochs / ``train_seconds`` (worker
start-up included), best of ``--repeats`` runs after one untimed warm-up fit.  Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dataloader.py --n 4096 --epochs 2 --workers 2 --augment
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

import activelearn as al


class MnistLike(torch.utils.data.Dataset):
    """uint8 images decoded to float per item, returned as ``(image, label)``."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(self.images[i]).float().div_(255.0).unsqueeze(0), int(self.labels[i])


def shift(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random translation by up to 2 pixels (zero padding), drawn from ``generator``."""
    dy, dx = (int(v) for v in torch.randint(0, 5, (2,), generator=generator))
    return torch.nn.functional.pad(x, (2, 2, 2, 2))[..., dy : dy + x.shape[-2], dx : dx + x.shape[-1]]


def measure(kind: str, images: np.ndarray, labels: np.ndarray, args: argparse.Namespace) -> dict[str, float | str]:
    n = len(images)
    inputs = torch.from_numpy(images).float().div(255.0).unsqueeze(1) if kind == "tensor" else MnistLike(images, labels)
    pools = al.Pools(inputs, num_classes=10)
    pools.record(al.SimulatedOracle(torch.as_tensor(labels), num_classes=10).answer(al.Query(np.arange(n))), cycle=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = al.backbones.SmallCNN(1, 10, width=args.width, hidden=64)
    model = al.ALModel(net, num_classes=10, device="cpu")
    workers = args.workers if kind == "dataset+workers" else 0
    cfg = al.TrainConfig(epochs=args.epochs, batch_size=args.batch_size, num_workers=workers)
    t0 = time.perf_counter()
    summary = al.Trainer(cfg, transform=shift if args.augment else None).fit(model, pools)
    wall = time.perf_counter() - t0
    return {"pool": kind, "workers": workers, "augment": str(bool(args.augment)), "seconds": round(summary["train_seconds"], 2),
            "wall": round(wall, 2), "images_per_s": round(n * args.epochs / summary["train_seconds"], 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--augment", action="store_true")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=None, help="append the rows as JSON lines to this file")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=args.n)
    torch.set_num_threads(1)
    warm = argparse.Namespace(**{**vars(args), "epochs": 1})
    measure("tensor", images[:256], labels[:256], warm)  # first optimizer and kernels (imports torch._dynamo): not timed
    rows = []
    for kind in ("tensor", "dataset", "dataset+workers"):
        runs = [measure(kind, images, labels, args) for _ in range(args.repeats)]
        rows.append(max(runs, key=lambda r: float(r["images_per_s"])))  # best of the repeats: least disturbed by other jobs
    print("| pool | workers | augment | seconds | images/s |")
    print("|---|---:|---|---:|---:|")
    for r in rows:
        print(f"| {r['pool']} | {r['workers']} | {r['augment']} | {r['seconds']} | {r['images_per_s']} |")
    if args.out:
        with open(args.out, "a") as f:
            for r in rows:
                f.write(json.dumps({**r, "n": args.n, "epochs": args.epochs, "batch_size": args.batch_size}) + "\n")


if __name__ == "__main__":
    main()
