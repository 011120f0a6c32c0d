"""CIFAR-10 under the DACS and the NCE-Net/Learning Loss protocols (Table 1 of each paper).

Two protocols, picked with ``--protocol`` (facts from METHODS.md, "Paper setups"):

* ``dacs`` (Kim & Shin, KDD 2022): ResNet-18 (3x3 stem, stride 1, no max-pool),
  1,000 random initial labels + 1,000 per cycle, 10 cycles, 200 epochs of SGD
  (lr 0.1, **momentum 0.4**, lr /10 at epoch 160), batch 128, crop + flip, the
  model re-initialised every cycle, and **DACS's auxiliary head attached to every
  method** (baselines included; its gradient into the backbone stops at epoch 120).
  The paper does not state a weight decay; we keep 5e-4 (``--weight-decay``).
* ``ncenet`` (Wan et al., AAAI 2021; Yoo & Kweon 2019): the same data, budgets and
  schedule with **momentum 0.9, weight decay 5e-4**, no auxiliary head.  The
  public code of both methods keeps training one model across cycles:
  ``--keep-training`` does that (default: re-initialised, as the papers' text says).

Both train in fp32 as the papers do; ``--amp`` turns on mixed precision on CUDA.
Learning Loss, NCE-Net and the other score strategies score a random subset of
10,000 unlabeled images per cycle.  Strategies that need MC dropout (``bald``,
``batchbald``) get a ResNet-18 with dropout 0.5 before its final layer (the same
initial weights: dropout has none); ``--dropout`` gives it to every strategy.
Each trial uses one seed: the same initial set and initial weights for every
strategy.  The published Table 1 of each paper is printed beside ours.

Full run (GPU; CIFAR-10 is downloaded once with ``--download``, needs internet)::

    PYTHONPATH=src python examples/cifar10.py --download --protocol dacs \
        --strategies random,coreset,cdal,dacs,learning_loss,dacs+learning_loss,ncenet,dacs+ncenet,bald,badge,vaal
    PYTHONPATH=src python examples/cifar10.py --download --protocol ncenet \
        --strategies random,entropy,learning_loss,ncenet,ncenet:score=confusion,bald,badge,vaal

CPU smoke run (a few hundred images, minutes; the numbers mean nothing)::

    PYTHONPATH=src python examples/cifar10.py --device cpu --epochs 1 --cycles 2 \
        --initial 50 --budget 50 --max-train 300 --max-test 200 --subset-size 100 --trials 1 \
        --strategies learning_loss,ncenet --table /tmp/cifar10_smoke.md

Writes a markdown table (test accuracy per labeled-set size, mean ± std over
trials, the paper's rows, and the mean subset information/diversity of the
selections) to ``--table`` and the per-run histories under ``--out``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from activelearn import datasets, strategies
from activelearn.analysis import SelectionAnalyzer
from activelearn.configs import preset
from activelearn.experiment import make_loop, parse_label
from activelearn.extensions import AuxiliaryHead
from activelearn.history import History, comparison_table
from activelearn.trainer import TrainConfig

#: Training settings of each paper's protocol (METHODS.md); tests/test_examples_protocols.py checks them.
PROTOCOLS: dict[str, dict[str, Any]] = {
    "dacs": {"momentum": 0.4, "weight_decay": 5e-4, "lr": 0.1, "epochs": 200, "milestones": (160,), "batch_size": 128, "aux_head": True},
    "ncenet": {"momentum": 0.9, "weight_decay": 5e-4, "lr": 0.1, "epochs": 200, "milestones": (160,), "batch_size": 128, "aux_head": False},
}

#: Published CIFAR-10 accuracies (%) at 1k..10k labels: each protocol's paper, Table 1 (METHODS.md).
PAPER: dict[str, dict[str, list[float]]] = {
    "dacs": {
        "paper: Random": [50.6, 59.9, 67.2, 74.5, 79.5, 83.3, 84.8, 85.2, 86.3, 87.0],
        "paper: LearnLoss": [54.1, 66.2, 76.3, 80.5, 82.2, 85.8, 87.4, 88.4, 89.1, 89.9],
        "paper: NCE-Net": [56.4, 67.2, 75.1, 80.9, 82.4, 85.0, 87.1, 88.5, 90.2, 90.2],
        "paper: CDAL": [50.6, 64.1, 73.7, 80.2, 83.8, 86.1, 87.3, 88.6, 89.5, 90.2],
        "paper: Core-set": [50.6, 62.4, 71.1, 78.2, 82.2, 84.5, 86.6, 88.1, 89.1, 89.8],
        "paper: DACS": [50.6, 70.8, 79.1, 82.9, 84.3, 86.9, 88.2, 89.1, 89.6, 90.4],
        "paper: LL + DACS": [53.0, 69.9, 78.5, 83.2, 84.2, 87.2, 88.6, 89.6, 90.6, 91.2],
        "paper: NCE + DACS": [55.2, 70.6, 78.9, 82.5, 84.6, 86.3, 88.2, 89.4, 90.3, 91.1],
    },
    "ncenet": {
        "paper: Softmax Random": [51.20, 61.72, 69.85, 76.09, 79.64, 83.20, 84.56, 85.79, 86.61, 87.28],
        "paper: Softmax Entropy": [51.20, 61.49, 70.62, 77.83, 81.81, 85.75, 86.94, 88.62, 89.60, 90.39],
        "paper: Softmax LL4AL": [51.20, 64.68, 75.36, 81.09, 83.54, 86.91, 88.45, 89.71, 90.29, 90.56],
        "paper: NCE Random": [56.22, 66.44, 73.52, 78.87, 80.88, 83.63, 85.38, 86.07, 87.28, 87.61],
        "paper: NCE BEntropy": [56.22, 60.12, 70.73, 77.84, 81.79, 84.92, 87.09, 88.01, 89.19, 90.21],
        "paper: NCE LL4AL": [56.50, 67.87, 76.70, 81.54, 83.94, 86.35, 87.76, 89.07, 89.73, 90.41],
        "paper: NCE Rejection- (R 0.5)": [56.22, 67.83, 76.05, 80.82, 83.78, 86.22, 87.68, 88.87, 89.78, 90.54],
        "paper: NCE Confusion- (R 0.5)": [56.22, 67.64, 75.85, 80.63, 83.26, 86.32, 87.74, 89.16, 90.19, 90.73],
        "paper: NCE Rejection": [56.22, 69.38, 77.32, 82.33, 84.41, 86.59, 88.03, 89.27, 90.21, 91.01],
        "paper: NCE Confusion": [56.22, 69.17, 76.91, 82.16, 84.49, 87.04, 87.98, 89.43, 90.14, 90.72],
    },
}


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


def training(args: argparse.Namespace) -> TrainConfig:
    """The protocol's TrainConfig with the command line's overrides (the LR drop stays at 80% of the epochs)."""
    proto = PROTOCOLS[args.protocol]
    return preset("cifar10").train.replace(
        epochs=args.epochs, milestones=(max(1, round(0.8 * args.epochs)),), lr=proto["lr"], batch_size=proto["batch_size"],
        momentum=proto["momentum"], weight_decay=proto["weight_decay"] if args.weight_decay is None else args.weight_decay,
        amp=args.amp, from_scratch=not args.keep_training,
    )


def backbone_for(dropout: float) -> str | None:
    """``resnet18`` with dropout before its final layer when ``--dropout`` asks for it; otherwise the preset's
    backbone, to which ``make_loop`` adds dropout 0.5 for strategies that need MC dropout."""
    return f"resnet18:dropout={dropout}" if dropout > 0 else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default="dacs", help="whose training setup (see the module docstring)")
    p.add_argument("--strategies", default="random,learning_loss,ncenet", help="comma-separated registered or combined names")
    p.add_argument("--trials", type=int, default=3, help="seeds 0..trials-1 (papers: 3)")
    p.add_argument("--epochs", type=int, default=200, help="epochs per cycle (papers: 200; the LR drops at 80%%)")
    p.add_argument("--cycles", type=int, default=10)
    p.add_argument("--initial", type=int, default=1000)
    p.add_argument("--budget", type=int, default=1000)
    p.add_argument("--subset-size", type=int, default=10_000, help="random unlabeled subset scored per cycle (papers: 10,000)")
    p.add_argument("--weight-decay", type=float, default=None, help="override the protocol's weight decay")
    p.add_argument("--amp", action="store_true", help="mixed precision on CUDA (the papers train in fp32)")
    p.add_argument("--keep-training", action="store_true", help="keep training one model across cycles (NCE-Net/LL4AL public code)")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout before the final layer for every strategy (MC-dropout strategies get 0.5 anyway)")
    p.add_argument("--max-train", type=int, default=None, help="use a random subset of the 50,000 training images (smoke runs)")
    p.add_argument("--max-test", type=int, default=None, help="use a random subset of the 10,000 test images (smoke runs)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--download", action="store_true", help="download CIFAR-10 if it is not found (needs internet)")
    p.add_argument("--out", default="results/cifar10")
    p.add_argument("--table", default="docs/results/cifar10.md")
    args = p.parse_args(argv)

    config = replace(preset("cifar10"), train=training(args))
    names = [s.strip() for s in args.strategies.split(",") if s.strip()]
    for name in names:  # fail early on an unknown name or parameter
        strategy, params = parse_label(name)
        strategies.get(strategy, **params)
    bundle = datasets.cifar10(args.data_root, download=args.download)
    bundle = subsample(bundle, args.max_train, args.max_test)
    runs: dict[str, list[History]] = {}
    for seed in range(args.trials):
        for name in names:
            t0 = time.time()
            strategy, params = parse_label(name)
            aux = [AuxiliaryHead()] if PROTOCOLS[args.protocol]["aux_head"] else []
            loop = make_loop(bundle, strategy, config=config, initial=args.initial, budget=args.budget, cycles=args.cycles, seed=seed,
                             device=args.device, progress=False, out_dir=Path(args.out) / args.protocol / name / f"seed{seed}",
                             backbone=backbone_for(args.dropout), extensions=aux,
                             strategy_params={**strategy_params(strategy, args.subset_size), **params})
            loop.callbacks.append(SelectionAnalyzer())
            h = loop.run()
            runs.setdefault(name, []).append(h)
            print(f"{name} seed {seed}: " + " ".join(f"{a * 100:.1f}" for a in h.metric("accuracy")) + f"  ({time.time() - t0:.0f} s)", flush=True)
            write_table(args, runs, bundle)
    return 0


def write_table(args: argparse.Namespace, runs: dict[str, list[History]], bundle: datasets.DatasetBundle) -> None:
    table = comparison_table(runs, reference=PAPER[args.protocol])
    rows = []
    for name, hs in runs.items():
        info = np.nanmean([np.nanmean(h.column("subset_information")[:-1]) for h in hs]) if args.cycles > 1 else float("nan")
        div = np.nanmean([np.nanmean(h.column("subset_diversity")[:-1]) for h in hs]) if args.cycles > 1 else float("nan")
        rows.append(f"| {name} | {info:.4f} | {div:.2f} |")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cmd = " ".join(["PYTHONPATH=src python examples/cifar10.py", *sys.argv[1:]])
    c = training(args)
    text = (
        f"# CIFAR-10, {args.protocol} protocol\n\n"
        f"Command: `{cmd}`\n\n"
        f"Machine: {os.cpu_count()}-core CPU, device {device}, torch {torch.__version__}. Pool {len(bundle.train_y)} images, "
        f"test {len(bundle.test_y)}; ResNet-18, {args.initial} initial + {args.budget} per cycle, {args.cycles} cycles, "
        f"{c.epochs} epochs of SGD (lr {c.lr}, momentum {c.momentum}, weight decay {c.weight_decay}, LR /10 at epoch "
        f"{c.milestones[0]}), batch {c.batch_size}, {'mixed precision' if c.amp else 'fp32'}, "
        f"{'re-initialised every cycle' if c.from_scratch else 'one model trained across cycles'}, "
        f"{'auxiliary head on every method' if PROTOCOLS[args.protocol]['aux_head'] else 'no auxiliary head'}, "
        f"scoring subset {args.subset_size}.\n\n"
        f"Test accuracy (%) by labeled-set size (mean ± std over trials), with the paper's Table 1:\n\n{table}\n\n"
        "| strategy | subset information | subset diversity |\n|---|---:|---:|\n" + "\n".join(rows) + "\n"
    )
    path = Path(args.table)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
