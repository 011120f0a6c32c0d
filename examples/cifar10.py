"""CIFAR-10 protocol of the DACS and NCE-Net papers, for Learning Loss, NCE-Net and friends.

Setup (DACS, Kim & Shin, KDD 2022; NCE-Net, Wan et al., AAAI 2021): CIFAR-10
ResNet-18 (3x3 stem, stride 1, no max-pool), 1,000 random initial labels +
1,000 per cycle, 10 cycles, 200 epochs per cycle of SGD (lr 0.1, momentum 0.4,
weight decay 5e-4, lr /10 at epoch 160), batch 128, crop-and-flip augmentation,
3 trials; Learning Loss and NCE-Net score a random subset of 10,000 unlabeled
images per cycle.  Each trial uses one seed (same initial set and initial
weights for every strategy); every cycle's selection is also scored by
:mod:`activelearn.analysis` (subset information and diversity, DACS Fig. 5).

Full run (GPU; CIFAR-10 is downloaded once with ``--download``, needs internet)::

    PYTHONPATH=src python examples/cifar10.py --download \
        --strategies random,learning_loss,ncenet,dacs+learning_loss,dacs+ncenet

CPU smoke run (a few hundred images, minutes; the numbers mean nothing)::

    PYTHONPATH=src python examples/cifar10.py --device cpu --epochs 1 --cycles 2 \
        --initial 50 --budget 50 --max-train 300 --max-test 200 --subset-size 100 --trials 1 \
        --strategies learning_loss,ncenet --table /tmp/cifar10_smoke.md

Published numbers: the papers' Table 1 (CIFAR-10 accuracy per cycle of
Random, Core-set, LearnLoss, NCE-Net, DACS and the LearnLoss + DACS, NCE-Net +
DACS combinations) belong in :data:`PAPER` below and in the written table beside
ours.  They are not restated in the project's METHODS.md and could not be
checked offline when this script was written, so :data:`PAPER` is empty rather
than filled from memory: add the rows (label -> accuracies in %, one per cycle)
from the papers before publishing a comparison.

Writes a markdown table (test accuracy per labeled-set size, mean ± std over
trials, plus the mean subset information/diversity of the selections) to
``--table`` and the per-run histories under ``--out``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from activelearn import datasets, strategies
from activelearn.analysis import SelectionAnalyzer
from activelearn.configs import preset
from activelearn.experiment import make_loop
from activelearn.history import History, comparison_table

#: Published CIFAR-10 accuracies (%) per cycle, label -> values; see the module docstring.
PAPER: dict[str, list[float]] = {}


def subsample(bundle: datasets.DatasetBundle, max_train: int | None, max_test: int | None, seed: int = 0) -> datasets.DatasetBundle:
    """A seeded random subset of the training pool and of the test set (for smoke runs)."""
    rng = np.random.default_rng(seed)
    changes = {}
    if max_train is not None and max_train < len(bundle.train_y):
        idx = torch.from_numpy(np.sort(rng.choice(len(bundle.train_y), size=max_train, replace=False)))
        changes.update(train_x=bundle.train_x[idx], train_y=bundle.train_y[idx])
    if max_test is not None and max_test < len(bundle.test_y):
        idx = torch.from_numpy(np.sort(rng.choice(len(bundle.test_y), size=max_test, replace=False)))
        changes.update(test_x=bundle.test_x[idx], test_y=bundle.test_y[idx])
    return replace(bundle, **changes) if changes else bundle


def strategy_params(name: str, subset_size: int) -> dict[str, int]:
    """``subset=`` for score strategies that take it (the squeezing part of a combination scores only candidates)."""
    if "+" in name:
        return {}
    return {"subset": subset_size} if "subset" in strategies.get_class(name)._param_names() else {}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--strategies", default="random,learning_loss,ncenet", help="comma-separated registered or combined names")
    p.add_argument("--trials", type=int, default=3, help="seeds 0..trials-1 (papers: 3)")
    p.add_argument("--epochs", type=int, default=200, help="epochs per cycle (papers: 200; the LR drops at 80%%)")
    p.add_argument("--cycles", type=int, default=10)
    p.add_argument("--initial", type=int, default=1000)
    p.add_argument("--budget", type=int, default=1000)
    p.add_argument("--subset-size", type=int, default=10_000, help="random unlabeled subset scored per cycle (papers: 10,000)")
    p.add_argument("--max-train", type=int, default=None, help="use a random subset of the 50,000 training images (smoke runs)")
    p.add_argument("--max-test", type=int, default=None, help="use a random subset of the 10,000 test images (smoke runs)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--download", action="store_true", help="download CIFAR-10 if it is not found (needs internet)")
    p.add_argument("--out", default="results/cifar10")
    p.add_argument("--table", default="docs/results/cifar10.md")
    args = p.parse_args(argv)

    base = preset("cifar10")
    train = base.train.replace(epochs=args.epochs, milestones=(max(1, int(round(0.8 * args.epochs))),))
    config = replace(base, train=train)
    bundle = datasets.cifar10(args.data_root, download=args.download)
    bundle = subsample(bundle, args.max_train, args.max_test)
    names = [s.strip() for s in args.strategies.split(",") if s.strip()]
    for name in names:
        strategies.get(name)  # fail early on an unknown name
    runs: dict[str, list[History]] = {}
    for seed in range(args.trials):
        for name in names:
            t0 = time.time()
            loop = make_loop(bundle, name, config=config, initial=args.initial, budget=args.budget, cycles=args.cycles, seed=seed,
                             device=args.device, progress=False, out_dir=Path(args.out) / name / f"seed{seed}",
                             strategy_params=strategy_params(name, args.subset_size))
            loop.callbacks.append(SelectionAnalyzer())
            h = loop.run()
            runs.setdefault(name, []).append(h)
            print(f"{name} seed {seed}: " + " ".join(f"{a * 100:.1f}" for a in h.metric("accuracy")) + f"  ({time.time() - t0:.0f} s)", flush=True)
            write_table(args, runs, bundle)
    return 0


def write_table(args: argparse.Namespace, runs: dict[str, list[History]], bundle: datasets.DatasetBundle) -> None:
    table = comparison_table(runs, reference=PAPER)
    rows = []
    for name, hs in runs.items():
        info = np.nanmean([np.nanmean(h.column("subset_information")[:-1]) for h in hs]) if args.cycles > 1 else float("nan")
        div = np.nanmean([np.nanmean(h.column("subset_diversity")[:-1]) for h in hs]) if args.cycles > 1 else float("nan")
        rows.append(f"| {name} | {info:.4f} | {div:.2f} |")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cmd = " ".join(["PYTHONPATH=src python examples/cifar10.py", *sys.argv[1:]])
    text = (
        "# CIFAR-10: strategies that change the model\n\n"
        f"Command: `{cmd}`\n\n"
        f"Machine: {os.cpu_count()}-core CPU, device {device}. Pool {len(bundle.train_y)} images, test {len(bundle.test_y)}; "
        f"ResNet-18, {args.initial} initial + {args.budget} per cycle, {args.cycles} cycles, {args.epochs} epochs "
        f"(SGD lr 0.1 momentum 0.4 wd 5e-4, LR /10 at 80%), scoring subset {args.subset_size}.\n\n"
        f"Test accuracy (%) by labeled-set size (mean ± std over trials):\n\n{table}\n\n"
        + ("" if PAPER else "Published Table 1 rows: not added yet (see the docstring of examples/cifar10.py).\n\n")
        + "| strategy | subset information | subset diversity |\n|---|---:|---:|\n" + "\n".join(rows) + "\n"
    )
    path = Path(args.table)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
