"""Cluster annotation on MNIST under Perez, Lebret & Aberer's protocol: accuracy against human interactions.

Protocol (the paper's, at a CPU size):

- Features from a network pretrained WITHOUT labels on images disjoint from the
  pool and the test set: the encoder 784 -> 256 -> 128 of an MLP autoencoder
  (decoder 128 -> 256 -> 784, mean squared error) trained on other MNIST
  training images.  Its weights are loaded into the classifier's hidden layers
  before the run; the loop re-initialises the model to its initial weights
  every cycle (``TrainConfig.from_scratch``), so every iteration starts from
  the pretrained encoder (and the same seeded head) and is fine-tuned a few
  epochs, as the paper resets its ImageNet ResNet-18 every iteration.
- Every iteration: cluster-only proposes ALL k-means clusters of the unlabeled
  pool (``rank="all"``, no pre-screening; the budget per iteration is the
  number of clusters, ``pool / 50`` at the start as the paper's 1,000 clusters
  of 50,000 CIFAR-10 images); uncertain-only labels that many max-entropy
  samples; the mixed scenarios do half samples and half clusters in EVERY
  iteration (``split=0.5``, ``switch_at=None``), in the named order.
- One interaction = one sample label, or one proposed cluster whether the
  simulated expert accepts it (modal class >= 80% of its members: all get that
  label) or declines.  The initial random labels count as interactions.
- Full supervision: the same pretrained model fine-tuned with the same schedule
  on every pool label; the page reports the interactions each scenario needs
  to come within 1 point of it.

Writes ``<out>/<scenario>/seed<k>/history.json`` (per-cycle cluster books in
``record.extra``: ``cluster_labeled`` ... of the cycle's query,
``train_cluster_labeled`` / ``train_cluster_label_accuracy`` of the labeled set
the record's model was trained on) and ``<out>/summary.json`` (arguments,
full-supervision accuracy per seed).

Run (from the repository root)::

    OMP_NUM_THREADS=1 PYTHONPATH=src python examples/cluster_annotation.py --out docs/results/cluster_annotation
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

import activelearn as al
from activelearn.backbones import MLP
from activelearn.callbacks import Callback

HIDDEN = (256, 128)

SCENARIOS: dict[str, tuple[str, dict[str, Any]]] = {
    "random": ("random", {}),
    "uncertain-only": ("entropy", {}),
    "cluster-only": ("cluster_annotation", {"scenario": "cluster"}),
    "uncertain+cluster": ("cluster_annotation", {"scenario": "sample+cluster", "sample": "entropy"}),
    "cluster+uncertain": ("cluster_annotation", {"scenario": "cluster+sample", "sample": "entropy"}),
}


def split_indices(n_train: int, pool: int, pretrain: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint seeded draws from the training images: (pool rows, pretraining rows)."""
    perm = np.random.default_rng([seed, 0xC1]).permutation(n_train)
    if pool + pretrain > n_train:
        raise ValueError(f"pool + pretrain = {pool + pretrain} exceeds the {n_train} training images")
    return np.sort(perm[:pool]), np.sort(perm[pool:pool + pretrain])


def pretrain_encoder(x: torch.Tensor, *, epochs: int, seed: int, batch_size: int = 128, lr: float = 1e-3) -> dict[str, torch.Tensor]:
    """Train an MLP autoencoder without labels on ``x``; return the encoder's weights (``fc*`` of :class:`MLP`)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        enc = MLP(x[0].numel(), 10, hidden=HIDDEN)
        dec = torch.nn.Sequential(torch.nn.Linear(HIDDEN[-1], HIDDEN[0]), torch.nn.ReLU(), torch.nn.Linear(HIDDEN[0], x[0].numel()))
    flat = x.flatten(1)
    params = [p for n, p in enc.named_parameters() if not n.startswith("head")] + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    for _ in range(epochs):
        for rows in torch.randperm(flat.shape[0], generator=gen).split(batch_size):
            loss = torch.nn.functional.mse_loss(dec(enc.embed(flat[rows])), flat[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return {k: v.detach().clone() for k, v in enc.state_dict().items() if not k.startswith("head")}


def make_net(seed: int, encoder: dict[str, torch.Tensor] | None = None) -> MLP:
    """MLP 784 -> 256 -> 128 -> 10 with a seeded head and, if given, the pretrained encoder's hidden layers."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = MLP(784, 10, hidden=HIDDEN)
    if encoder is not None:
        missing, unexpected = net.load_state_dict(encoder, strict=False)
        if unexpected or any(not k.startswith("head") for k in missing):
            raise RuntimeError(f"encoder weights do not fit the MLP: missing {missing}, unexpected {unexpected}")
    return net


class TrainingSetClusterBooks(Callback):
    """Per record: cluster-labeled samples in the labeled set the model was trained on, and their true accuracy."""

    def on_record(self, loop: Any, record: al.CycleRecord) -> None:
        labeled = [e for e in loop.pools.log if e.source == "cluster" and e.index >= 0 and e.in_task]
        record.extra["train_cluster_labeled"] = float(len(labeled))
        record.extra["train_cluster_label_accuracy"] = (
            float(loop.oracle.audit([e.index for e in labeled], [e.label for e in labeled])) if labeled else float("nan")
        )


def full_supervision(data: al.datasets.DatasetBundle, train: al.TrainConfig, seed: int, encoder: dict[str, torch.Tensor] | None) -> float:
    model = al.ALModel(make_net(seed, encoder), num_classes=10, device="cpu", seed=seed)
    pools = al.Pools(data.train_x, num_classes=10)
    pools.record([al.Answer(i, int(y)) for i, y in enumerate(data.train_y.tolist())], cycle=0)
    al.Trainer(train).fit(model, pools, cycle=0)
    return float(al.trainer.evaluate(model, data.test_x, data.test_y)["accuracy"])


def first_within(h: al.History, target: float) -> float:
    """Interactions at the first record whose accuracy is >= ``target`` (NaN if none)."""
    acc, inter = h.metric("accuracy"), h.column("interactions")
    hit = np.flatnonzero(acc >= target)
    return float(inter[hit[0]]) if hit.size else float("nan")


def strategy_params(label: str, args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    name, params = SCENARIOS[label]
    params = dict(params)
    if name == "cluster_annotation":
        params.update(rank=args.rank, cluster_size=args.cluster_size, feature="embeddings")
        if params["scenario"] != "cluster":
            params.update(split=0.5, switch_at=None)  # samples AND clusters in every iteration
    return name, params


def run_seed(base: al.datasets.DatasetBundle, args: argparse.Namespace, seed: int, out: Path, summary: dict) -> None:
    pool_rows, pre_rows = split_indices(base.num_train, args.pool, args.pretrain, seed)
    t0 = time.time()
    encoder = pretrain_encoder(base.train_x[pre_rows], epochs=args.ae_epochs, seed=seed) if args.pretrain else None
    print(f"seed {seed}: autoencoder on {args.pretrain} images disjoint from the pool ({time.time() - t0:.0f}s)", flush=True)
    idx = torch.from_numpy(pool_rows)
    data = replace(base, train_x=base.train_x[idx], train_y=base.train_y[idx], meta={**base.meta, "pool_subset": args.pool, "subset_seed": seed})
    train = al.TrainConfig(epochs=args.epochs, batch_size=args.batch_size, optimizer="adam", lr=args.lr, seed=seed)
    full = full_supervision(data, train, seed, encoder)
    summary["full_supervision"][str(seed)] = full
    print(f"seed {seed}: full supervision on {args.pool} labels: {full:.4f}", flush=True)
    for label in args.scenarios:
        name, params = strategy_params(label, args)
        t0 = time.time()
        loop = al.experiment.make_loop(
            data, name, backbone=make_net(seed, encoder), train=train, initial=args.initial, budget=args.budget,
            cycles=args.cycles, seed=seed, strategy_params=params, progress=False, device="cpu",
        )
        loop.oracle.cluster_threshold = args.threshold
        loop.callbacks.append(TrainingSetClusterBooks())
        h = loop.run()
        h.meta.update(scenario=label, seed=seed, full_supervision=full)
        h.save_json(out / label / f"seed{seed}" / "history.json")
        summary["runs"].setdefault(label, {})[str(seed)] = first_within(h, full - 0.01)
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        print(f"{label} seed {seed}: acc {h.metric('accuracy')[-1]:.4f} labeled {h[-1].n_labeled} "
              f"interactions {h[-1].interactions} ({time.time() - t0:.0f}s)", flush=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--pool", type=int, default=5000)
    ap.add_argument("--pretrain", type=int, default=20000, help="training images (disjoint from the pool) for the autoencoder; 0: no pretraining")
    ap.add_argument("--ae_epochs", type=int, default=10)
    ap.add_argument("--initial", type=int, default=50, help="random initial labels (interactions)")
    ap.add_argument("--budget", type=int, default=100, help="interactions per iteration (cluster-only: the number of clusters)")
    ap.add_argument("--cycles", type=int, default=10, help="trainings; the last one sees initial + (cycles-1) * budget interactions")
    ap.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs per iteration")
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--cluster_size", type=int, default=75, help="only for the pre-screening ranks")
    ap.add_argument("--rank", default="all", choices=["all", "purity", "compact", "random"])
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--data", default="/work/shared/data/mnist")
    ap.add_argument("--out", default="docs/results/cluster_annotation")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = al.datasets.mnist(args.data if Path(args.data).exists() else None)
    summary: dict = {"args": vars(args), "full_supervision": {}, "runs": {}}
    if (out / "summary.json").exists():  # a run of other seeds or scenarios into the same folder adds to it
        old = json.loads((out / "summary.json").read_text())
        summary["full_supervision"].update(old.get("full_supervision", {}))
        summary["runs"].update(old.get("runs", {}))
    for seed in args.seeds:
        run_seed(base, args, seed, out, summary)


if __name__ == "__main__":
    main()
