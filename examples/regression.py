"""Active learning on a real regression task: scikit-learn's bundled diabetes data (test MSE).

Random, Core-set, DACS, Learning Loss and DACS + Learning Loss (expand-and-squeeze)
over 3 seeds with the ``diabetes`` preset (``activelearn.configs.PRESETS``): a
256-256 MLP with dropout 0.5, retrained from scratch every cycle (Adam, lr 3e-4,
50 epochs, batch 32); 20 random initial labels, 20 per cycle, 8 cycles (160
labels at the end); features and target standardised on the training split,
so a test MSE of 1.0 is the training mean's.  The main loss is MSE because the
task is regression (``TrainConfig(loss="auto")``); DACS's auxiliary head is a
regression head trained with the same loss.  Each run's history goes to
``OUT/<strategy>/seed<k>/history.json``; ``examples/results_pages.py`` builds the
table of ``docs/results/regression.md`` from them.

Run (from the repository root; about 4 minutes on a shared 2-core CPU)::

    OMP_NUM_THREADS=1 PYTHONPATH=src python examples/regression.py --out docs/results/regression

One run from the command line (same preset)::

    activelearn run --dataset diabetes --strategy dacs --seed 0
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import activelearn as al
from activelearn.experiment import make_loop

STRATEGIES = ["random", "coreset", "dacs", "learning_loss", "dacs+learning_loss"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--strategies", nargs="+", default=STRATEGIES)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--cycles", type=int, default=None, help="default: the preset's 8")
    ap.add_argument("--out", default="docs/results/regression")
    args = ap.parse_args(argv)
    out = Path(args.out)
    data = al.datasets.load("diabetes")  # one split (seed 0) for every run: the seeds vary the initial set and the model
    start = time.time()
    for name in args.strategies:
        for seed in args.seeds:
            t0 = time.time()
            loop = make_loop(data, name, seed=seed, cycles=args.cycles, progress=False, device="cpu")
            history = loop.run()
            history.save_json(out / name / f"seed{seed}" / "history.json")
            mse = history.metric("mse")
            print(f"{name} seed {seed}: test MSE {mse[0]:.3f} -> {mse[-1]:.3f} ({time.time() - t0:.0f}s)", flush=True)
    machine = {
        "python": platform.python_version(), "torch": torch.__version__, "activelearn": al.__version__,
        "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "seconds": round(time.time() - start), "args": vars(args),
    }
    (out / "machine.json").write_text(json.dumps(machine, indent=1) + "\n")
    print(f"done in {machine['seconds']} s; tables: python examples/results_pages.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
