"""MixMNIST open-set active learning with annotation costs (Kim, Kim & Hwang, Table 2), under both protocols.

The pool holds MNIST digits (in task), ambiguous digits and notMNIST letters
(``activelearn.datasets.mix_mnist``); the oracle answers "not in task" for the
latter two and every examined sample costs 1.  Stages of ``--per-stage``
in-task labels (quota mode) run from ``--initial`` up to ``--max-labels``.

Two starts, the same for every strategy of a seed (fair by construction):

- ``in_task``: the first ``--initial`` in-task samples of a seeded random
  order of the pool, cost ``--initial``, no rejected sample labeled;
- ``mixed``: that order examined from the front until ``--initial`` in-task
  samples are found; every examined sample is charged and the rejected ones
  are labeled "not in task".  The in-task labels are the same as ``in_task``'s.

Protocols (``--protocol``): ``paper`` = the baselines (random, least
confidence, entropy) from ``in_task``, the contrastive methods from ``mixed``
(the paper's Sec. 4); ``equal`` = every strategy from ``mixed``; ``both``.

Baselines train as in the paper: three-conv CNN (``cnn:blocks=3``), Adam
1e-3, weight decay 5e-3, batch 32, lr / 10 at 70 % and 90 % of ``--epochs``
(the paper: 70 and 90 of 100), gradient clip 2.5, label smoothing 0.1, an
auxiliary K+1 class trained on the rejected samples undersampled to the mean
in-task class count; unlabeled samples predicted K+1 are skipped.  The
contrastive methods report their fine-tuned classifier's accuracy.

Runs are saved as ``<out>/<start>/<strategy>/seed<k>.json`` and skipped when
present (kill and rerun to continue); ``--report`` prints the tables.

Full scale (GPU)::

    python examples/mixmnist.py --n-in-task 60000 --n-ambiguous 15000 --n-ood 10000 --seeds 0,1,2 \\
        --protocol both --first-epochs 300 --later-epochs 100 --cl-batch 1024 --out runs/mixmnist
"""

from __future__ import annotations

import argparse
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
    "random": (93.84, 440, 4.69),
    "least_confidence": (96.80, 6582, 68.00),
    "entropy": (93.89, 32738, 348.68),
    "contrastive_random": (96.07, 420, 4.37),
    "contrastive_distance": (96.65, 406, 4.20),
}
BASELINES = ("random", "least_confidence", "entropy")
CONTRASTIVE = ("contrastive_random", "contrastive_distance")
ALL = BASELINES + CONTRASTIVE


def baseline_train(epochs: int, seed: int) -> al.TrainConfig:
    """The paper's schedule for the comparative methods, lr steps kept at 70 % and 90 % of ``epochs``."""
    milestones = tuple(sorted({max(1, round(m * epochs / 100)) for m in (70, 90)}))
    return al.TrainConfig(epochs=epochs, batch_size=32, optimizer="adam", lr=1e-3, weight_decay=5e-3, milestones=milestones,
                          gamma=0.1, grad_clip=2.5, label_smoothing=0.1, undersample_rejected=True, seed=seed)


def start_of(name: str, protocol: str) -> str:
    """Which initial set a strategy gets under a protocol."""
    return "in_task" if protocol == "paper" and name in BASELINES else "mixed"


def initial_labels(pools: al.Pools, oracle: al.SimulatedOracle, in_task: np.ndarray, count: int, seed: int, start: str) -> None:
    """Label the initial set of ``start`` (the experimenter's protocol: it alone reads the hidden in-task mask)."""
    order = np.random.default_rng([seed, 0xA11]).permutation(pools.n)
    if start == "in_task":
        pools.record(oracle.answer(al.Query(order[in_task[order]][:count])), cycle=0)
        return
    pos = 0
    while pools.n_labeled < count:
        need = count - pools.n_labeled
        pools.record(oracle.answer(al.Query(order[pos : pos + need])), cycle=0)
        pos += need


def build_strategy(name: str, args: argparse.Namespace, seed: int) -> al.strategies.Strategy:
    if name in CONTRASTIVE:
        return al.strategies.get(name, seed=seed, first_epochs=args.first_epochs, later_epochs=args.later_epochs, encoder=args.encoder,
                                 batch_size=args.cl_batch, classifier=args.classifier, classifier_epochs=args.classifier_epochs)
    return al.strategies.get(name, seed=seed, skip_predicted_ood=True)


def run_one(name: str, start: str, bundle: al.datasets.DatasetBundle, args: argparse.Namespace, seed: int) -> History:
    k = bundle.num_classes
    strategy = build_strategy(name, args, seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_backbone(args.backbone, input_shape=bundle.input_shape, num_classes=k + 1)
    model = al.ALModel(net, num_classes=k, device=args.device, seed=seed, open_set=True)
    pools = al.Pools(bundle.train_x, num_classes=k)
    in_task = np.asarray(bundle.meta["in_task"])
    oracle = al.SimulatedOracle(bundle.train_y, num_classes=k, in_task=in_task, cost=1.0)  # the simulated annotator
    initial_labels(pools, oracle, in_task, args.initial, seed, start)
    initial = set(pools.labeled.tolist()) | set(pools.rejected.tolist())
    callbacks = []
    if name in CONTRASTIVE:
        def cl_accuracy(loop: al.ActiveLoop, record: al.history.CycleRecord) -> None:
            record.extra["cl_accuracy"] = loop.strategy.evaluate(loop.model, loop.pools, *loop.test)  # type: ignore[attr-defined]
        callbacks.append(cl_accuracy)
    cycles = (args.max_labels - args.initial) // args.per_stage + 1
    loop = al.ActiveLoop(model, strategy, oracle, pools, test=(bundle.test_x, bundle.test_y), trainer=al.Trainer(baseline_train(args.epochs, seed)),
                         budget=args.per_stage, cycles=cycles, seed=seed, progress=False, mode="quota", callbacks=callbacks)
    t0 = time.time()
    hist = loop.run()
    kind = np.asarray(bundle.meta["kind"])
    examined = np.array([i for i in np.concatenate([pools.labeled, pools.rejected]) if int(i) not in initial], dtype=np.int64)
    hist.meta.update({"name": name, "start": start, "seed": seed, "seconds": round(time.time() - t0, 1), "pool": bundle.meta["counts"],
                      "initial_cost": len(initial), "examined_after_initial": np.bincount(kind[examined], minlength=3).tolist(),
                      "args": {k_: v for k_, v in vars(args).items() if k_ not in ("report", "out")}})
    return hist


# ------------------------------------------------------------------ report
def accuracy_of(h: History) -> np.ndarray:
    """The paper's accuracy per stage: the contrastive methods' own classifier, the model otherwise."""
    cl = h.column("cl_accuracy")
    return cl if np.isfinite(cl).all() else h.metric("accuracy")


def load(folder: Path) -> dict[tuple[str, str], list[History]]:
    """``{(start, strategy): histories in seed order}`` from ``folder/<start>/<strategy>/seed<k>.json``."""
    runs: dict[tuple[str, str], list[History]] = {}
    for p in sorted(folder.glob("*/*/seed*.json"), key=lambda p: (p.parent.parent.name, p.parent.name, int(p.stem[4:]))):
        runs.setdefault((p.parent.parent.name, p.parent.name), []).append(History.load_json(p))
    return runs


def _pm(v: np.ndarray, fmt: str) -> str:
    return f"{v.mean():{fmt}}" + (f" ± {v.std():{fmt}}" if len(v) > 1 else "")


def protocol_rows(runs: dict[tuple[str, str], list[History]], protocol: str) -> list[tuple[str, list[History]]]:
    return [(n, runs[(start_of(n, protocol), n)]) for n in ALL if (start_of(n, protocol), n) in runs]


def cost_table(folder: Path, protocol: str) -> str:
    """The paper's Table 2 under one protocol: accuracy, cumulative cost and cost per 1 % at the last stage, ours beside the paper's."""
    rows = ["| strategy | start | seeds | in-task labels | accuracy % | cost | cost per 1% | examined after the initial set: in task / ambiguous / letters | paper acc % | paper cost | paper cost per 1% |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, hs in protocol_rows(load(folder), protocol):
        acc = np.array([accuracy_of(h)[-1] for h in hs]) * 100
        cost = np.array([h.column("cost")[-1] for h in hs])
        kinds = np.mean([h.meta["examined_after_initial"] for h in hs], axis=0)
        pa, pc, pp = PAPER[name]
        rows.append(f"| {name} | {hs[0].meta['start']} | {len(hs)} | {int(hs[0].column('n_labeled')[-1])} | {_pm(acc, '.2f')} | {_pm(cost, ',.0f')} "
                    f"| {_pm(cost_per_accuracy(cost, acc / 100), '.2f')} | {' / '.join(f'{v:,.0f}' for v in kinds)} | {pa:.2f} | {pc:,} | {pp:.2f} |")
    return "\n".join(rows)


def stage_table(folder: Path, protocol: str) -> str:
    """Per stage: each strategy's cumulative cost when it holds that many in-task labels, and what the stage cost (mean over seeds)."""
    runs = protocol_rows(load(folder), protocol)
    labels = runs[0][1][0].column("n_labeled")
    rows = ["| in-task labels | " + " | ".join(f"{name} ({hs[0].meta['start']})" for name, hs in runs) + " |", "|---:|" + "---:|" * len(runs)]
    costs = [np.mean([h.column("cost") for h in hs], axis=0) for _, hs in runs]
    for i, n in enumerate(labels):
        cells = [f"{c[i]:,.0f}" + (f" (+{c[i] - c[i - 1]:.1f})" if i else "") for c in costs]
        rows.append(f"| {int(n)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def seed_table(folder: Path) -> str:
    """Every run: start, seed, accuracy and model accuracy at the last stage, cost, seconds."""
    rows = ["| strategy | start | seed | accuracy % | CNN accuracy % | cost | rejected | seconds |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for (start, name), hs in sorted(load(folder).items(), key=lambda kv: (kv[0][0], ALL.index(kv[0][1]))):
        for h in hs:
            rows.append(f"| {name} | {start} | {h.meta['seed']} | {100 * accuracy_of(h)[-1]:.2f} | {100 * h.metric('accuracy')[-1]:.2f} "
                        f"| {h.column('cost')[-1]:,.0f} | {h.column('cost')[-1] - h.column('n_labeled')[-1]:,.0f} | {h.meta['seconds']:,.0f} |")
    return "\n".join(rows)


def scale_table(folder: Path) -> str:
    """Cost of the in-task labels after the initial set against pool size: ``folder/n<pool>/`` each an ``--out`` of a short run."""
    pools = sorted(folder.glob("n*"), key=lambda p: int(p.name[1:]))
    rows = ["| strategy | start | " + " | ".join(f"pool {int(p.name[1:]):,}" for p in pools) + " |", "|---|---|" + "---:|" * len(pools)]
    per_pool = [load(p) for p in pools]
    for start, name in sorted({key for runs in per_pool for key in runs}, key=lambda k: (k[0], ALL.index(k[1]))):
        cells = []
        for runs in per_pool:
            hs = runs.get((start, name), [])
            extra = [(h.column("cost")[-1] - h.meta["initial_cost"]) / (h.column("n_labeled")[-1] - h.column("n_labeled")[0]) for h in hs]
            cells.append(f"{np.mean(extra):.2f} ({len(hs)})" if hs else "-")
        rows.append(f"| {name} | {start} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot(folder: Path, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    runs = load(folder)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, protocol in zip(axes, ("paper", "equal")):
        for name, hs in protocol_rows(runs, protocol):
            cost = np.mean([h.column("cost") for h in hs], axis=0)
            ax.plot(cost, 100 * np.mean([accuracy_of(h) for h in hs], axis=0), marker="o", ms=3, label=name)
        ax.set_xscale("log")
        ax.set_title(f"{protocol} protocol (mean over seeds)")
        ax.set_xlabel("cumulative annotation cost (examined samples)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy %")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def report(folder: Path) -> str:
    parts = []
    for protocol in ("paper", "equal"):
        parts += [f"## {protocol} protocol", cost_table(folder, protocol), "", stage_table(folder, protocol), ""]
    return "\n".join(parts + ["## every run", seed_table(folder)])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strategies", default=",".join(ALL))
    ap.add_argument("--protocol", default="both", choices=["paper", "equal", "both"])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--n-in-task", type=int, default=60_000)
    ap.add_argument("--n-ambiguous", type=int, default=15_000)
    ap.add_argument("--n-ood", type=int, default=10_000)
    ap.add_argument("--initial", type=int, default=100)
    ap.add_argument("--per-stage", type=int, default=10)
    ap.add_argument("--max-labels", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=100, help="CNN epochs per stage (the paper: 100; lr steps at 70%% and 90%%)")
    ap.add_argument("--backbone", default="cnn:blocks=3")
    ap.add_argument("--first-epochs", type=int, default=300, help="contrastive epochs at the first stage (the paper: 300)")
    ap.add_argument("--later-epochs", type=int, default=100, help="contrastive epochs at later stages (the paper: 100)")
    ap.add_argument("--encoder", default="auto", choices=["auto", "cnn", "mlp"])
    ap.add_argument("--cl-batch", type=int, default=1024)
    ap.add_argument("--classifier", default="finetune", choices=["finetune", "probe"], help="the contrastive methods' classifier")
    ap.add_argument("--classifier-epochs", type=int, default=100)
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", default="runs/mixmnist")
    ap.add_argument("--report", action="store_true", help="only print the tables and write <out>/mixmnist_cost.png")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.report:
        plot(out, out / "mixmnist_cost.png")
        print(report(out))
        return
    names = args.strategies.split(",")
    unknown = sorted(set(names) - set(ALL))
    if unknown:
        sys.exit(f"error: unknown strategies {unknown}; choose from {list(ALL)}")
    protocols = ("paper", "equal") if args.protocol == "both" else (args.protocol,)
    jobs = list(dict.fromkeys((start_of(n, p), n) for n in names for p in protocols))
    bundle = al.datasets.mix_mnist(n_in_task=args.n_in_task, n_ambiguous=args.n_ambiguous, n_ood=args.n_ood, seed=0)
    for seed in [int(s) for s in args.seeds.split(",")]:
        for start, name in jobs:
            path = out / start / name / f"seed{seed}.json"
            if path.exists():
                continue
            h = run_one(name, start, bundle, args, seed)
            h.save_json(path)
            print(f"{name} ({start}) seed {seed}: acc {100 * accuracy_of(h)[-1]:.2f} cost {h.column('cost')[-1]:.0f} ({h.meta['seconds']:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
