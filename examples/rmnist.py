"""DACS paper's Repeated MNIST experiment (Kim & Shin, KDD 2022, Table 2).

Repeated MNIST (3 noisy copies of the 60k MNIST training images, 180,000 pool
samples), a 3-layer feed-forward net (784-256-256-10), 500 random initial
labels + 500 per cycle, 10 cycles, 200 epochs of SGD (lr 0.1, momentum 0.4,
lr / 10 at epoch 160, batch 128) from scratch each cycle.  As in the paper,
every strategy trains with DACS's auxiliary head attached.

Writes, under ``--out``: one ``<strategy>/seed<k>/history.json`` per run
(saved after every cycle, so an interrupted run can be reported and resumed),
``rmnist.md`` (accuracy per cycle, mean ± std over trials, with the paper's
Table 2 rows, and each strategy's mean subset information and diversity from
:class:`activelearn.analysis.SelectionAnalyzer`) and ``learning_curves.png``.
The default list adds the baselines the papers compare against (CDAL, the DACS
paper's strongest diversity baseline; BALD, BADGE, VAAL); ``bald`` and
``batchbald`` train the MLP with dropout 0.5 (they need MC dropout; ``make_loop``
adds it, and dropout has no weights, so the initial weights stay the others').
Any registered or combined name works, e.g. the model-changing strategies
``learning_loss``, ``ncenet``, ``dacs+learning_loss``, ``dacs+ncenet``, and
parameters follow a colon (``dacs:cross_group=True``).

Examples
--------
::

    python examples/rmnist.py --seeds 0,1,2 --out results/rmnist
    python examples/rmnist.py --epochs 50 --seeds 0 --out results/rmnist_quick
    python examples/rmnist.py --report-only --out results/rmnist     # table from saved runs

The same through the CLI (one table per call)::

    activelearn compare --dataset repeated_mnist --strategies random,entropy,coreset,dacs,dacs+entropy \\
        --seeds 0,1,2 --aux-head --out results/rmnist
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from activelearn import datasets
from activelearn.analysis import SelectionAnalyzer, selection_table
from activelearn.configs import preset
from activelearn.experiment import make_loop, parse_label
from activelearn.extensions import AuxiliaryHead
from activelearn.history import History, comparison_table, plot_curves

STRATEGIES = ("random", "entropy", "coreset", "dacs", "dacs+entropy", "cdal", "bald", "badge", "vaal")

#: DACS paper, Table 2 (RMNIST, accuracy % at 0.2% .. 2.0% labeled = 500 .. 5,000 samples)
PAPER = {
    "paper: Random": [85.1, 88.2, 90.8, 92.3, 93.1, 93.7, 94.2, 94.2, 94.3, 94.7],
    "paper: Core-set": [85.1, 88.6, 91.9, 93.0, 94.3, 94.6, 95.6, 96.1, 96.1, 96.5],
    "paper: DACS": [85.1, 92.1, 94.3, 95.1, 96.0, 96.4, 96.8, 97.0, 97.4, 97.6],
    "paper: LearnLoss": [86.1, 88.5, 90.1, 91.6, 92.4, 93.0, 93.5, 94.4, 94.5, 94.5],
    "paper: NCE-Net": [87.5, 88.9, 90.5, 91.9, 93.3, 93.8, 94.7, 95.1, 95.6, 95.6],
    "paper: CDAL": [85.1, 90.5, 93.2, 94.8, 95.8, 95.9, 96.0, 96.2, 96.5, 96.7],
    "paper: LL + DACS": [85.7, 90.1, 91.4, 93.4, 93.7, 94.6, 95.5, 96.1, 96.6, 97.0],
    "paper: NCE + DACS": [87.6, 91.3, 93.3, 94.8, 95.7, 95.8, 96.2, 96.3, 96.6, 96.8],
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated names")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds, one trial each")
    p.add_argument("--epochs", type=int, default=None, help="epochs per cycle (paper: 200; the lr drop stays at 80%%)")
    p.add_argument("--cycles", type=int, default=None, help="cycles (paper: 10)")
    p.add_argument("--initial", type=int, default=None, help="initial labels (paper: 500)")
    p.add_argument("--budget", type=int, default=None, help="labels per cycle (paper: 500)")
    p.add_argument("--data-root", default=None, help="MNIST folder (default: the loader's)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-aux-head", action="store_true", help="train the baselines without the auxiliary head")
    p.add_argument("--aux-scale", type=float, default=10.0, help="cosine scale of the auxiliary head (paper: not given)")
    p.add_argument("--out", default="results/rmnist", help="output folder")
    p.add_argument("--report-only", action="store_true", help="only build the table and plot from saved runs")
    return p.parse_args(argv)


def load_runs(out: Path, names: list[str], seeds: list[int]) -> dict[str, list[History]]:
    runs: dict[str, list[History]] = {}
    for name in names:
        for seed in seeds:
            path = out / name / f"seed{seed}" / "history.json"
            if path.exists():
                runs.setdefault(name, []).append(History.load_json(path))
    return runs


def report(out: Path, names: list[str], seeds: list[int], header: str = "") -> str:
    runs = load_runs(out, names, seeds)
    if not runs:
        return "no finished cycles yet"
    table = comparison_table(runs, reference=PAPER)
    counts = ", ".join(f"{n}: {len(hs)} trial(s), {min(len(h) for h in hs)} cycle(s)" for n, hs in runs.items())
    text = (
        f"{header}Test accuracy (%) by labeled-set size, mean ± std over trials ({counts}).\n\n{table}\n\n"
        "Mean over cycles of each selection's normalised subset information and diversity (mean pairwise\n"
        f"Euclidean distance of the selected embeddings), from `activelearn.analysis`:\n\n{selection_table(runs)}\n"
    )
    (out / "rmnist.md").write_text(text)
    try:
        plot_curves(runs, out / "learning_curves.png")
    except ImportError:
        pass
    return text


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    names = [s.strip() for s in args.strategies.split(",") if s.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = preset("repeated_mnist")
    if args.epochs is not None:
        milestone = max(1, round(0.8 * args.epochs))
        config = replace(config, train=config.train.replace(epochs=args.epochs, milestones=(milestone,)))
    if not args.report_only:
        data = datasets.load("repeated_mnist", **({"root": args.data_root} if args.data_root else {}))
        cycles = args.cycles or config.cycles
        for seed in seeds:  # seed-major: a partial run still has every strategy
            for name in names:
                sub = out / name / f"seed{seed}"
                done = sub / "history.json"
                if done.exists() and len(History.load_json(done)) >= cycles:
                    continue
                t0 = time.perf_counter()
                strategy, params = parse_label(name)
                loop = make_loop(
                    data, strategy, strategy_params=params, config=config, seed=seed, initial=args.initial, budget=args.budget,
                    cycles=cycles, device=args.device, out_dir=sub, progress=False,
                    extensions=[] if args.no_aux_head else [AuxiliaryHead(scale=args.aux_scale)],
                )
                loop.callbacks.append(SelectionAnalyzer())  # DACS Fig. 5: information and diversity per cycle
                history = loop.run()
                acc = " ".join(f"{a * 100:.1f}" for a in history.metric("accuracy"))
                print(f"{name} seed {seed}: {acc} ({time.perf_counter() - t0:.0f} s)", flush=True)
                report(out, names, seeds)
    meta = {"epochs": config.train.epochs, "milestones": list(config.train.milestones), "torch_threads": torch.get_num_threads()}
    print(report(out, names, seeds, header=f"Settings: {json.dumps(meta)}\n\n"))


if __name__ == "__main__":
    main()
