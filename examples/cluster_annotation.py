"""Cluster annotation on MNIST (Perez, Lebret & Aberer's scenarios), accuracy against human interactions.

Scenarios: random, uncertain-only (max entropy), cluster-only, uncertain+cluster
and cluster+uncertain (the run's query interactions split in half, in that
order).  The budget counts interactions: one per sample, one per proposed
cluster whether the simulated expert accepts it (modal class >= 80% of its
members: every member gets that label) or declines.  Clusters: k-means on the
model's penultimate features, 75 members on average.

CPU-sized setup (say so when quoting numbers): a seeded subset of the MNIST
training images as the pool, the full 10,000-image test set, an MLP
784 -> 256 -> 128 -> 10 retrained from scratch every cycle.  Also trains the
same model on the whole pool with true labels (full supervision) and reports the
interactions each scenario needs to come within 1 point of it.

Run (from the repository root)::

    OMP_NUM_THREADS=1 PYTHONPATH=src python examples/cluster_annotation.py --out docs/results/cluster_annotation
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import activelearn as al
from activelearn.backbones import MLP

SCENARIOS = {
    "random": ("random", {}),
    "uncertain-only": ("entropy", {}),
    "cluster-only": ("cluster_annotation", {"scenario": "cluster"}),
    "uncertain+cluster": ("cluster_annotation", {"scenario": "sample+cluster", "sample": "entropy"}),
    "cluster+uncertain": ("cluster_annotation", {"scenario": "cluster+sample", "sample": "entropy"}),
}


def subset(bundle: al.datasets.DatasetBundle, n: int, seed: int) -> al.datasets.DatasetBundle:
    from dataclasses import replace

    idx = torch.from_numpy(np.sort(np.random.default_rng([seed, 0xC1]).choice(bundle.num_train, size=n, replace=False)))
    return replace(bundle, train_x=bundle.train_x[idx], train_y=bundle.train_y[idx], meta={**bundle.meta, "pool_subset": n, "subset_seed": seed})


def make_net(seed: int) -> MLP:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MLP(784, 10, hidden=(256, 128))


def full_supervision(data: al.datasets.DatasetBundle, train: al.TrainConfig, seed: int) -> float:
    model = al.ALModel(make_net(seed), num_classes=10, device="cpu", seed=seed)
    pools = al.Pools(data.train_x, num_classes=10)
    pools.record([al.Answer(i, int(y)) for i, y in enumerate(data.train_y.tolist())], cycle=0)
    al.Trainer(train).fit(model, pools, cycle=0)
    return al.trainer.evaluate(model, data.test_x, data.test_y)["accuracy"]


def first_reaching(h: al.History, target: float) -> float:
    acc, inter = h.metric("accuracy"), h.column("interactions")
    hit = np.flatnonzero(acc >= target)
    return float(inter[hit[0]]) if hit.size else float("nan")


def _mean(rows: list[list[float]]) -> np.ndarray:
    n = min(len(r) for r in rows)
    with warnings.catch_warnings():  # all-NaN columns (cycles without cluster queries) stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.array([r[:n] for r in rows], dtype=float), axis=0)


def report(summary: dict) -> str:
    """Markdown tables from ``summary.json`` (means over the finished seeds)."""
    runs = summary["runs"]
    full = np.mean(list(summary["full_supervision"].values()))
    lines = [f"Full supervision (all pool labels, same model and schedule): {100 * full:.2f}% "
             f"(seeds {sorted(summary['full_supervision'])})", ""]
    inter = _mean([r["interactions"] for r in runs[next(iter(runs))].values()])
    lines += ["### Test accuracy (%) by human interactions, mean over seeds", "",
              "| scenario (seeds) | " + " | ".join(f"{int(i)}" for i in inter) + " |",
              "|---|" + "---:|" * len(inter)]
    for label, per_seed in runs.items():
        acc = _mean([r["accuracy"] for r in per_seed.values()]) * 100
        lines.append(f"| {label} ({len(per_seed)}) | " + " | ".join(f"{a:.1f}" for a in acc) + " |")
    lines += ["", "### Labeled samples (mean over seeds) by human interactions", "",
              "| scenario | " + " | ".join(f"{int(i)}" for i in inter) + " |", "|---|" + "---:|" * len(inter)]
    for label, per_seed in runs.items():
        lab = _mean([r["n_labeled"] for r in per_seed.values()])
        lines.append(f"| {label} | " + " | ".join(f"{a:.0f}" for a in lab) + " |")
    lines += ["", "### Cluster labels per cycle: samples labeled by accepted clusters / their true accuracy (%) / "
              "clusters accepted / declined (mean over seeds; the cycle's selection, trained on from the next cycle)", ""]
    for label, per_seed in runs.items():
        if "cluster" not in label:
            continue
        cl = _mean([r["cluster_labeled"] for r in per_seed.values()])
        ca = _mean([r["cluster_label_accuracy"] for r in per_seed.values()]) * 100
        acc_n = _mean([r["clusters_accepted"] for r in per_seed.values()])
        dec_n = _mean([r["clusters_declined"] for r in per_seed.values()])
        cells = [f"{c:.0f} / {a:.1f} / {x:.1f} / {d:.1f}" if c == c else "-" for c, a, x, d in zip(cl, ca, acc_n, dec_n)][:-1]
        lines.append(f"- {label}: " + "; ".join(f"cycle {k}: {c}" for k, c in enumerate(cells) if c != "-"))
        tot = [np.nansum(r["cluster_labeled"]) for r in per_seed.values()]
        wrong = [np.nansum(np.array(r["cluster_labeled"]) * (1 - np.array(r["cluster_label_accuracy"]))) for r in per_seed.values()]
        lines.append(f"  total cluster-labeled {np.mean(tot):.0f}, of which wrong {np.mean(wrong):.0f} "
                     f"({100 * np.sum(wrong) / max(np.sum(tot), 1):.1f}%)")
    ref_label = "uncertain-only"
    lines += ["", "### Interactions needed", "",
              "| scenario | within 1 pt of full supervision (per seed) | to reach uncertain-only's final accuracy (per seed) |",
              "|---|---|---|"]
    for label, per_seed in runs.items():
        w1 = [r["within_1pt_of_full"] for r in per_seed.values()]
        reach = []
        for seed, r in per_seed.items():
            ref = runs.get(ref_label, {}).get(seed)
            if ref is None:
                reach.append(float("nan"))
                continue
            target = ref["accuracy"][-1]
            hit = [i for a, i in zip(r["accuracy"], r["interactions"]) if a >= target]
            reach.append(hit[0] if hit else float("nan"))
        fmt = lambda v: ", ".join("not reached" if x != x else f"{int(x)}" for x in v)  # noqa: E731
        lines.append(f"| {label} | {fmt(w1)} | {fmt(reach)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--pool", type=int, default=10000)
    ap.add_argument("--initial", type=int, default=20)
    ap.add_argument("--budget", type=int, default=20, help="interactions per cycle")
    ap.add_argument("--cycles", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--cluster_size", type=int, default=75)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--feature", default="embeddings", help="clustered features: a model output or 'inputs'")
    ap.add_argument("--rank", default="purity", choices=["purity", "compact", "random"])
    ap.add_argument("--out", default="docs/results/cluster_annotation")
    ap.add_argument("--report_only", action="store_true", help="print the tables of an existing summary.json")
    args = ap.parse_args()
    out = Path(args.out)
    if args.report_only:
        print(report(json.loads((out / "summary.json").read_text())))
        return
    out.mkdir(parents=True, exist_ok=True)
    base = al.datasets.mnist("/work/shared/data/mnist" if Path("/work/shared/data/mnist").exists() else None)
    train = al.TrainConfig(epochs=args.epochs, batch_size=64, optimizer="adam", lr=1e-3)
    switch_at = args.initial + (args.cycles - 1) * args.budget // 2  # half of the query interactions
    summary: dict = {"args": vars(args), "switch_at": switch_at, "runs": {}, "full_supervision": {}}
    for seed in args.seeds:
        data = subset(base, args.pool, seed)
        t0 = time.time()
        full = full_supervision(data, train.replace(seed=seed), seed)
        summary["full_supervision"][seed] = full
        print(f"seed {seed}: full supervision on {args.pool} labels: {full:.4f} ({time.time() - t0:.0f}s)", flush=True)
        for label in args.scenarios:
            name, params = SCENARIOS[label]
            params = dict(params)
            if name == "cluster_annotation":
                params.update(cluster_size=args.cluster_size, feature=args.feature, rank=args.rank)
                if params["scenario"] != "cluster":
                    params["switch_at"] = switch_at
            t0 = time.time()
            loop = al.experiment.make_loop(
                data, name, backbone=make_net(seed), train=train.replace(seed=seed), initial=args.initial,
                budget=args.budget, cycles=args.cycles, seed=seed, strategy_params=params, progress=False, device="cpu",
            )
            loop.oracle.cluster_threshold = args.threshold
            h = loop.run()
            h.save_json(out / label / f"seed{seed}.json")
            summary["runs"].setdefault(label, {})[seed] = {
                "interactions": h.column("interactions").tolist(),
                "n_labeled": h.column("n_labeled").tolist(),
                "accuracy": h.metric("accuracy").tolist(),
                "cluster_labeled": h.column("cluster_labeled").tolist(),
                "cluster_label_accuracy": h.column("cluster_label_accuracy").tolist(),
                "clusters_accepted": h.column("clusters_accepted").tolist(),
                "clusters_declined": h.column("clusters_declined").tolist(),
                "within_1pt_of_full": first_reaching(h, full - 0.01),
            }
            (out / "summary.json").write_text(json.dumps(summary, indent=1))
            print(f"{label} seed {seed}: acc {h.metric('accuracy')[-1]:.4f} labeled {h[-1].n_labeled} "
                  f"interactions {h[-1].interactions} ({time.time() - t0:.0f}s)", flush=True)
    print(report(summary))


if __name__ == "__main__":
    main()
