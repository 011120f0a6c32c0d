"""Images per second for training and inference: tensor pool vs Dataset pool vs Dataset pool with workers.

Data: MNIST-sized (the real MNIST training images from ``../shared/data`` when
present, else random 28 x 28 uint8 images) and CIFAR-sized (random 32 x 32 x 3
uint8 images; only the shape matters for throughput).  The Dataset is what a
user typically writes: uint8 storage, one item converted to a float tensor in
``__getitem__`` (plus, for CIFAR, a per-sample ``torchvision.transforms.v2``
random crop and flip in ``__getitem__``, the classic per-item augmentation).
The tensor path stores float tensors and, for CIFAR, augments with the batched
:class:`activelearn.augment.RandomCropFlip` inside the trainer.

Per data set and mode: one training epoch of ``--train`` labeled images
(:class:`activelearn.Trainer`, batch 128, the library's ``cnn`` backbone for both
sizes, to keep CPU runs short) and one inference pass over ``--infer`` pool images (``ALModel.outputs``,
``probs``).  Each measurement runs once after a warm-up epoch; images/s = images /
wall seconds.  Ratios are what to compare (this machine is shared and noisy).

Usage::

    python benchmarks/dataloader.py --threads 1 --workers 2 --out benchmarks/results_dataloader_cpu.md
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

import activelearn as al
from activelearn.augment import RandomCropFlip
from activelearn.backbones import SmallCNN
from activelearn.pools import Answer


class UInt8Images(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """uint8 images converted per item, optionally augmented per item (a typical user Dataset)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: object = None) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = torch.from_numpy(self.images[i]).float().div_(255.0)
        if self.transform is not None:
            x = self.transform(x)  # type: ignore[operator]
        return x, int(self.labels[i])


def load(kind: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 images (N, C, H, W) and labels."""
    rng = np.random.default_rng(0)
    if kind == "mnist":
        try:
            b = al.datasets.mnist()
            x = (b.train_x[:n].reshape(-1, 1, 28, 28).numpy() * 255).round().astype(np.uint8)
            return x, b.train_y[:n].numpy()
        except Exception:  # noqa: BLE001 - no MNIST files: the shape is what matters
            return rng.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8), rng.integers(0, 10, n)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n)


def measure(kind: str, mode: str, args: argparse.Namespace) -> dict[str, float | str]:
    n = max(args.train, args.infer)
    imgs, labels = load(kind, n)
    per_item = None
    if kind == "cifar":
        from torchvision.transforms import v2

        per_item = v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()])
    if mode == "tensor":
        data: torch.Tensor | torch.utils.data.Dataset = torch.from_numpy(imgs).float().div_(255.0)  # type: ignore[type-arg]
        pools = al.Pools(data, num_classes=10)
        transform = RandomCropFlip(32, 4) if kind == "cifar" else None
    else:
        workers = 0 if mode == "dataset" else args.workers
        pools = al.Pools(UInt8Images(imgs, labels, per_item), num_classes=10, num_workers=workers)
        transform = None
    pools.record([Answer(int(i), int(labels[i])) for i in range(args.train)])
    torch.manual_seed(0)
    net = SmallCNN(in_channels=imgs.shape[1], num_classes=10, image_size=imgs.shape[2])
    model = al.ALModel(net, num_classes=10, device="cpu", seed=0)
    trainer = al.Trainer(al.TrainConfig(epochs=1, batch_size=128, lr=0.05, seed=0), transform=transform, progress=False)
    trainer.fit(model, pools)  # warm-up
    t0 = time.perf_counter()
    trainer.fit(model, pools, cycle=1)
    train_s = time.perf_counter() - t0
    idx = np.arange(args.infer)
    t0 = time.perf_counter()
    model.outputs(pools, idx, "probs")
    infer_s = time.perf_counter() - t0
    return {"data": kind, "mode": mode, "train_img_s": args.train / train_s, "infer_img_s": args.infer / infer_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", type=int, default=10000, help="labeled images trained on per epoch")
    ap.add_argument("--infer", type=int, default=20000, help="pool images scored")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--data", default="mnist,cifar")
    ap.add_argument("--out", default=None, help="markdown file for the results (and .jsonl beside it)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for kind in args.data.split(","):
        for mode in ("tensor", "dataset", "dataset+workers"):
            r = measure(kind, mode, args)
            rows.append(r)
            print(json.dumps(r), flush=True)
    lines = [
        f"Command: `python benchmarks/dataloader.py --threads {args.threads} --workers {args.workers} --train {args.train} --infer {args.infer}`",
        f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}, CPU.",
        "",
        "| data | pool | train img/s | vs tensor | inference img/s | vs tensor |",
        "|---|---|---:|---:|---:|---:|",
    ]
    base = {r["data"]: r for r in rows if r["mode"] == "tensor"}
    for r in rows:
        b = base[r["data"]]
        lines.append(
            f"| {r['data']} | {r['mode']} | {r['train_img_s']:.0f} | {float(r['train_img_s']) / float(b['train_img_s']):.2f} "
            f"| {r['infer_img_s']:.0f} | {float(r['infer_img_s']) / float(b['infer_img_s']):.2f} |"
        )
    print("\n".join(lines))
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
        Path(args.out).with_suffix(".jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
