"""Per-epoch cost of the contrastive strategies' SimCLR training, to extrapolate their default 100 epochs.

``contrastive_distance`` / ``contrastive_random`` train a SimCLR + SupCon
representation for ``first_epochs`` (default 100) passes over the unlabeled
pool inside their first selection; on the 180,000-sample RMNIST pool that does
not fit the per-strategy benchmark's time limit.  This script builds the same
setup as ``benchmarks/strategies.py`` (RMNIST, the 784-256-256-10 MLP trained
5 epochs on 500 seeded labels), runs one selection with ``--epochs`` first
epochs, and times every epoch of the representation training on its own
(wall and process CPU seconds).  It prints one JSON line: the per-epoch
times, the rest of the selection (total - training) and
``rest + 100 x median epoch``, the extrapolated selection at the defaults.

Usage::

    ACTIVELEARN_DATA=/work/shared/data PYTHONPATH=src python benchmarks/contrastive_epochs.py \\
        --strategy contrastive_distance --epochs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strategy", default="contrastive_distance")
    ap.add_argument("--epochs", type=int, default=3, help="first_epochs of the measured selection")
    ap.add_argument("--budget", type=int, default=500)
    ap.add_argument("--defaults", type=int, default=100, help="first_epochs to extrapolate to")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    import torch

    from activelearn.configs import TrainConfig
    from activelearn.contrastive import ContrastiveRepresentation
    from activelearn.experiment import make_loop

    epochs: list[tuple[float, float]] = []
    original = ContrastiveRepresentation.fit_contrastive

    def timed_fit(self, *a, epochs: int, **kw):  # type: ignore[no-untyped-def]
        last = float("nan")
        for _ in range(epochs):  # one call per epoch (a fresh Adam each: same work, timed apart)
            t0, c0 = time.perf_counter(), time.process_time()
            last = original(self, *a, epochs=1, **kw)
            epochs_times.append((time.perf_counter() - t0, time.process_time() - c0))
        return last

    epochs_times = epochs
    ContrastiveRepresentation.fit_contrastive = timed_fit  # type: ignore[method-assign]
    torch.manual_seed(0)
    train = TrainConfig(epochs=5, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.4, seed=0)
    loop = make_loop("repeated_mnist", args.strategy, strategy_params={"first_epochs": args.epochs}, seed=0, train=train,
                     cycles=2, budget=args.budget, device="cpu", progress=False)
    loop._prepare()
    loop.query(loop.initial, 0)
    loop.trainer.fit(loop.model, loop.pools, cycle=0)
    t0, c0 = time.perf_counter(), time.process_time()
    loop.strategy.select(loop.model, loop.pools, args.budget)
    total, total_cpu = time.perf_counter() - t0, time.process_time() - c0
    wall = [w for w, _ in epochs]
    cpu = [c for _, c in epochs]
    rest, rest_cpu = total - sum(wall), total_cpu - sum(cpu)
    print(json.dumps({
        "strategy": args.strategy, "first_epochs": args.epochs, "unlabeled": int(loop.pools.n_unlabeled),
        "epoch_wall_s": wall, "epoch_cpu_s": cpu, "select_wall_s": total, "select_cpu_s": total_cpu,
        "rest_wall_s": rest, "rest_cpu_s": rest_cpu,
        f"extrapolated_{args.defaults}_wall_s": rest + args.defaults * statistics.median(wall),
        f"extrapolated_{args.defaults}_cpu_s": rest_cpu + args.defaults * statistics.median(cpu),
        "torch_threads": torch.get_num_threads(), "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }))


if __name__ == "__main__":
    main()
