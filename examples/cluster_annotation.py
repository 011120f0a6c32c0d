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
    args = ap.parse_args()
    out = Path(args.out)
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


if __name__ == "__main__":
    main()
