"""MixMNIST open-set active learning (Kim, Kim & Hwang, Table 2), cost-aware.

The pool holds MNIST digits (in task), ambiguous digits and notMNIST letters;
the oracle answers "not in task" for the latter two and every examined sample
costs 1.  Protocol: 100 initial in-task labels (drawn at random, examined
samples counted), then stages of 10 in-task labels each (quota mode) up to
``--max-labels``.  Baselines get the paper's fairness device: an auxiliary
"not in task" class K+1 trained on the rejected samples, and unlabeled samples
predicted as K+1 are skipped.

Paper scale (GPU)::

    python examples/mixmnist.py --n-in-task 40000 --n-ambiguous 10000 --n-ood 10000 --max-labels 300 \
        --first-epochs 100 --later-epochs 20 --out runs/mixmnist

Runs can be split over processes (``--strategies a,b``) sharing ``--out``;
``--report`` then writes ``<out>/mixmnist.md`` and ``<out>/mixmnist_cost.png``
from every history saved there.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

import activelearn as al
from activelearn.backbones import build_backbone
from activelearn.history import History, cost_per_accuracy

#: Kim, Kim & Hwang, Table 2 (MixMNIST, 300 in-task labels): accuracy %, cumulative cost, cost per 1%.
PAPER = {
    "contrastive_distance": (96.65, 406, 4.20),
    "least_confidence": (96.80, 6582, 68.00),
    "entropy": (93.89, 32738, 348.68),
    "random": (93.84, 440, 4.69),
}
ALL = ("random", "least_confidence", "entropy", "contrastive_random", "contrastive_distance")


def initial_labels(pools: al.Pools, oracle: al.SimulatedOracle, count: int, seed: int) -> None:
    """Examine random samples until ``count`` in-task labels are in (every examined sample costs)."""
    order = np.random.default_rng([seed, 0xA11]).permutation(pools.n)
    pos = 0
    while pools.n_labeled < count:
        need = count - pools.n_labeled
        pools.record(oracle.answer(al.Query(order[pos : pos + need])), cycle=0)
        pos += need


def run_one(name: str, bundle: al.datasets.DatasetBundle, args: argparse.Namespace, seed: int) -> History:
    k = bundle.num_classes
    if name.startswith("contrastive"):
        strategy = al.strategies.get(name, seed=seed, first_epochs=args.first_epochs, later_epochs=args.later_epochs, encoder=args.encoder, batch_size=args.cl_batch)
    else:
        strategy = al.strategies.get(name, seed=seed, skip_predicted_ood=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_backbone(args.backbone, input_shape=bundle.input_shape, num_classes=k + 1)
    model = al.ALModel(net, num_classes=k, device=args.device, seed=seed, open_set=True)
    pools = al.Pools(bundle.train_x, num_classes=k)
    oracle = al.SimulatedOracle(bundle.train_y, num_classes=k, in_task=bundle.meta["in_task"], cost=1.0)  # the simulated annotator
    initial_labels(pools, oracle, args.initial, seed)
    callbacks = []
    if hasattr(strategy, "evaluate"):
        def cl_accuracy(loop: al.ActiveLoop, record: al.history.CycleRecord) -> None:
            record.extra["cl_accuracy"] = loop.strategy.evaluate(loop.model, loop.pools, *loop.test)  # type: ignore[attr-defined]
        callbacks.append(cl_accuracy)
    trainer = al.Trainer(al.TrainConfig(epochs=args.epochs, batch_size=64, lr=1e-3, seed=seed))
    cycles = (args.max_labels - args.initial) // args.per_stage + 1
    loop = al.ActiveLoop(model, strategy, oracle, pools, test=(bundle.test_x, bundle.test_y), trainer=trainer,
                         budget=args.per_stage, cycles=cycles, seed=seed, progress=False, mode="quota", callbacks=callbacks)
    start = time.time()
    hist = loop.run()
    hist.meta.update({"name": name, "seconds": time.time() - start, "pool": bundle.meta["counts"], "args": vars(args)})
    return hist


def final_accuracy(h: History) -> np.ndarray:
    """The paper's accuracy per stage: the representation's classifier for the contrastive methods, the model otherwise."""
    cl = h.column("cl_accuracy")
    return cl if np.isfinite(cl).all() else h.metric("accuracy")


def report(out: Path, command: str) -> str:
    runs: dict[str, list[History]] = {}
    for p in sorted(out.glob("*/seed*.json")):
        runs.setdefault(p.parent.name, []).append(History.load_json(p))
    a = next(iter(runs.values()))[0].meta["args"]
    kind = al.datasets.mix_mnist(n_in_task=a["n_in_task"], n_ambiguous=a["n_ambiguous"], n_ood=a["n_ood"], seed=0).meta["kind"]
    rows = ["| strategy | seeds | in-task labels | accuracy % | model acc % | cost | wasted | cost per 1% | examined after initial: in / ambiguous / OoD | paper acc % | paper cost | paper cost per 1% |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in [n for n in ALL if n in runs] + sorted(set(runs) - set(ALL)):
        hs = runs[name]
        acc = np.array([final_accuracy(h)[-1] for h in hs])
        cost = np.array([h.column("cost")[-1] for h in hs])
        wasted = np.array([h.column("wasted_cost")[-1] for h in hs])
        model_acc = np.array([h.metric("accuracy")[-1] for h in hs])
        cpa = cost_per_accuracy(cost, acc)
        pm = PAPER.get(name)
        paper = f"{pm[0]:.2f} | {pm[1]:,} | {pm[2]:.2f}" if pm else "– | – | –"
        kinds = np.mean([np.bincount(kind[np.concatenate([np.asarray(r.selected, dtype=int) for r in h.records])], minlength=3) for h in hs], axis=0)
        sd = lambda v, f: f"{v.mean():{f}}" + (f" ± {v.std():{f}}" if len(v) > 1 else "")  # noqa: E731
        rows.append(f"| {name} | {len(hs)} | {int(hs[0].column('n_labeled')[-1])} | {sd(100 * acc, '.2f')} | {sd(100 * model_acc, '.2f')} | {sd(cost, '.0f')} | {sd(wasted, '.0f')} | {sd(cpa, '.2f')} | {' / '.join(f'{v:.0f}' for v in kinds)} | {paper} |")
    table = "\n".join(rows)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, hs in runs.items():
        ax.plot(hs[0].column("cost"), 100 * final_accuracy(hs[0]), marker="o", ms=3, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("cumulative annotation cost (examined samples)")
    ax.set_ylabel("test accuracy %")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "mixmnist_cost.png", dpi=120)
    per_stage = ["", "Per stage (first seed): in-task labels -> (accuracy %, cumulative cost)", ""]
    for name, hs in runs.items():
        h = hs[0]
        cells = ", ".join(f"{int(n)}: ({100 * a:.1f}, {c:.0f})" for n, a, c in zip(h.column("n_labeled"), final_accuracy(h), h.column("cost")))
        per_stage.append(f"- {name} ({h.meta.get('seconds', 0):.0f} s): {cells}")
    text = f"Command: `{command}`\n\n{table}\n" + "\n".join(per_stage) + "\n"
    (out / "mixmnist.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strategies", default=",".join(ALL))
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--n-in-task", type=int, default=40_000)
    ap.add_argument("--n-ambiguous", type=int, default=10_000)
    ap.add_argument("--n-ood", type=int, default=10_000)
    ap.add_argument("--initial", type=int, default=100)
    ap.add_argument("--per-stage", type=int, default=10)
    ap.add_argument("--max-labels", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=50, help="classifier epochs per stage (baselines' model)")
    ap.add_argument("--backbone", default="mlp")
    ap.add_argument("--first-epochs", type=int, default=100, help="contrastive epochs at the first stage")
    ap.add_argument("--later-epochs", type=int, default=20, help="contrastive epochs at later stages")
    ap.add_argument("--encoder", default="auto", choices=["auto", "cnn", "mlp"])
    ap.add_argument("--cl-batch", type=int, default=256)
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", default="runs/mixmnist")
    ap.add_argument("--report", action="store_true", help="only write the table and plot from saved histories")
    args = ap.parse_args(argv)
    out = Path(args.out)
    command = "python examples/mixmnist.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.report:
        print(report(out, command))
        return
    bundle = al.datasets.mix_mnist(n_in_task=args.n_in_task, n_ambiguous=args.n_ambiguous, n_ood=args.n_ood, seed=0)
    for seed in [int(s) for s in args.seeds.split(",")]:
        for name in args.strategies.split(","):
            h = run_one(name, bundle, args, seed)
            h.save_json(out / name / f"seed{seed}.json")
            print(f"{name} seed {seed}: acc {100 * final_accuracy(h)[-1]:.2f} cost {h.column('cost')[-1]:.0f} ({h.meta['seconds']:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
