"""Repeated MNIST with the strategies that change the model (Learning Loss, NCE-Net).

The DACS paper's RMNIST setup (Kim & Shin, KDD 2022): a 3-layer feed-forward
net (784-256-256-10), 500 random initial labels + 500 per cycle, 10 cycles,
200 epochs of SGD (lr 0.1, momentum 0.4, lr /10 at 80% of the epochs), batch
128.  Each trial uses one seed (the same initial set and initial weights for
every strategy).  Every cycle's selection is also scored by the analysis tools
(subset information and diversity, DACS Fig. 5), written to the JSON histories.

Run (the paper's schedule needs hours on a CPU; shorten with --epochs)::

    OMP_NUM_THREADS=1 PYTHONPATH=src python examples/rmnist_model_strategies.py \
        --strategies learning_loss,ncenet --trials 1 --epochs 20

Writes ``docs/results/rmnist_ll_ncenet.md`` (table of test accuracy per
labeled-set size, mean ± std over trials, with the paper's RMNIST rows beside
ours) and the histories under ``--out``.  Combined names work too
(``dacs+learning_loss``, ``coreset+ncenet``), and parameters follow a colon
(``ncenet:distance=cosine``).  ``--reuse`` loads the histories already in
``--out`` (same epochs and cycles) instead of re-running them, and ``--collect``
only gathers the finished ones, so runs made in separate invocations end up in
one table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from activelearn import datasets
from activelearn.analysis import SelectionAnalyzer, selection_table
from activelearn.configs import preset
from activelearn.experiment import make_loop, parse_label
from activelearn.history import History, comparison_table

#: The DACS paper's RMNIST accuracies (%) at 0.2%..2.0% labeled (METHODS.md).
PAPER = {
    "paper: Random": [85.1, 88.2, 90.8, 92.3, 93.1, 93.7, 94.2, 94.2, 94.3, 94.7],
    "paper: Core-set": [85.1, 88.6, 91.9, 93.0, 94.3, 94.6, 95.6, 96.1, 96.1, 96.5],
    "paper: DACS": [85.1, 92.1, 94.3, 95.1, 96.0, 96.4, 96.8, 97.0, 97.4, 97.6],
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--strategies", default="learning_loss,ncenet", help="comma-separated registered or combined names")
    p.add_argument("--trials", type=int, default=3, help="seeds 0..trials-1 (paper: 3)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds instead of 0..trials-1")
    p.add_argument("--epochs", type=int, default=200, help="epochs per cycle (paper: 200; LR drop at 80%%)")
    p.add_argument("--cycles", type=int, default=10, help="train/evaluate rounds (paper: 10)")
    p.add_argument("--initial", type=int, default=500)
    p.add_argument("--budget", type=int, default=500)
    p.add_argument("--device", default=None)
    p.add_argument("--data-root", default=None)
    p.add_argument("--out", default="results/rmnist_model_strategies")
    p.add_argument("--table", default="docs/results/rmnist_ll_ncenet.md")
    p.add_argument("--reuse", action="store_true", help="load finished histories from --out instead of re-running them")
    p.add_argument("--collect", action="store_true", help="only gather finished histories from --out into the table (run nothing)")
    args = p.parse_args(argv)

    base = preset("repeated_mnist")
    train = base.train.replace(epochs=args.epochs, milestones=(max(1, int(round(0.8 * args.epochs))),))
    config = replace(base, train=train)
    bundle = datasets.load("repeated_mnist", **({"root": args.data_root} if args.data_root else {}))
    names = [s.strip() for s in args.strategies.split(",") if s.strip()]
    runs: dict[str, list[History]] = {}
    start = time.time()
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else list(range(args.trials))
    for seed in seeds:  # every strategy gets the first seed before any gets the second
        for label in names:
            name, params = parse_label(label)
            out = Path(args.out) / label.replace(":", "_").replace(",", "_") / f"seed{seed}"
            t0 = time.time()
            if (args.reuse or args.collect) and (out / "history.json").exists():
                h = History.load_json(out / "history.json")
                if len(h) == args.cycles and h.meta.get("train_config", {}).get("epochs") == args.epochs:
                    runs.setdefault(label, []).append(h)
                    print(f"{label} seed {seed}: reused {out / 'history.json'}", flush=True)
                    continue
            if args.collect:
                continue
            loop = make_loop(bundle, name, config=config, initial=args.initial, budget=args.budget, cycles=args.cycles,
                             seed=seed, device=args.device, progress=False, out_dir=out, strategy_params=params)
            loop.callbacks.append(SelectionAnalyzer())
            h = loop.run()
            name = label
            runs.setdefault(name, []).append(h)
            acc = " ".join(f"{a * 100:.1f}" for a in h.metric("accuracy"))
            print(f"{name} seed {seed}: {acc}  ({time.time() - t0:.0f} s)", flush=True)
            write_table(args, runs, time.time() - start)
    if runs:
        write_table(args, runs, time.time() - start)
    return 0


def write_table(args: argparse.Namespace, runs: dict[str, list[History]], seconds: float) -> None:
    table = comparison_table(runs, reference=PAPER)
    all_runs = [h for hs in runs.values() for h in hs]
    mean_seconds = sum(sum(r.train_seconds + r.select_seconds for r in h.records) for h in all_runs) / max(len(all_runs), 1)
    cmd = " ".join(["OMP_NUM_THREADS=1 PYTHONPATH=src python examples/rmnist_model_strategies.py", *sys.argv[1:]])
    text = (
        "# Repeated MNIST: Learning Loss and NCE-Net (short-schedule study)\n\n"
        f"Command: `{cmd}`\n\n"
        f"Machine: {os.cpu_count()}-core CPU shared with other jobs, no GPU, OMP_NUM_THREADS=1. Setup: MLP 784-256-256-10, {args.initial} initial + {args.budget} per cycle, "
        f"{args.cycles} cycles, {args.epochs} epochs per cycle (paper: 200), SGD lr 0.1 momentum 0.4, LR /10 at 80%, "
        f"batch 128, trials (seeds 0, 1, ...) per strategy: " + ", ".join(f"{k} {len(v)}" for k, v in runs.items()) + "; "
        f"mean train + select time per run: {mean_seconds / 60:.1f} min. "
        "The paper rows are the DACS paper's RMNIST numbers (200 epochs, 3 trials).\n\n"
        "Test accuracy (%) by number of labeled samples (mean ± std over trials):\n\n"
        f"{table}\n\n"
        "Mean over cycles of the selection's normalised subset information and its diversity "
        "(mean pairwise Euclidean distance of the selected embeddings), from `activelearn.analysis`:\n\n"
        f"{selection_table(runs)}\n"
    )
    path = Path(args.table)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
