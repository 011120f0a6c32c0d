"""Contrastive cluster-distance acquisition (Kim, Kim & Hwang) and its random twin.

Both strategies own a :class:`~activelearn.contrastive.ContrastiveRepresentation`
(a separate encoder, not a model extension), trained once per cycle on the
pool: SimCLR on the unlabeled samples plus SupCon on the labeled ones, with
every rejected ("not in task") sample as class K+1.  The representation keeps
training across cycles as in the paper: ``first_epochs`` at the first cycle
the strategy sees, ``later_epochs`` afterwards.  Within one cycle (quota mode
calls ``select`` several times) it is not retrained; the clusters are kept and
only the radius rule is re-applied with the rejections seen so far.

Acquisition (``contrastive_distance``):

Parameters (keyword only): ``first_epochs`` / ``later_epochs`` (contrastive
epochs at the first / later cycles; an epoch is one pass over the unlabeled
pool), ``batch_size``, ``lr`` (Adam), ``temperature`` (0.07), ``rep_dim`` /
``proj_dim`` (128), ``encoder`` ("auto": a small CNN for images, an MLP
otherwise), ``kmeans_iter``, ``drop_ood_cluster``, ``no_reject_radius``,
``seed``; the classifier: ``classifier`` ("finetune", the paper, or "probe"),
``classifier_epochs`` (100), ``classifier_batch`` (32), ``classifier_lr``
(1e-3), ``classifier_weight_decay`` (1e-6), ``label_smoothing`` (0.1), all for
"finetune"; ``classifier_steps`` (full-batch Adam steps, "probe" only).

1. k-means with K+1 clusters on the L2-normalised pre-projection features of
   all pool samples;
2. drop the cluster with the highest share of rejected samples (rejected
   members / members), if any sample has been rejected;
3. per-cluster quota proportional to the cluster's unlabeled members (largest
   remainder; a cluster that runs out passes its surplus on, and the dropped
   cluster is used last, so exactly ``budget`` samples are chosen);
4. radius rule (:func:`radius_order`): ``radius_k`` = distance from the centroid
   to the closest rejected member; pick inside the radius, largest distance
   first, then outside, smallest distance first.  A cluster without a rejected
   member uses the median member distance (``no_reject_radius="median"``; the
   paper is silent).  Distances are Euclidean on normalised features.

``contrastive_random`` uses the same clusters and quotas but picks at random
inside each cluster (the paper's Random(CL)).

Classifier (whose accuracy :meth:`evaluate` reports, as the paper does),
trained every cycle on the labeled in-task samples plus the rejected ones
undersampled (seeded) to the mean class count, as class K+1; prediction is the
argmax over the K task classes.  ``classifier="finetune"`` (default, the
paper): a COPY of the current contrastive encoder plus a fresh linear layer,
fine-tuned end to end (:class:`~activelearn.contrastive.FineTunedClassifier`
states the details: no augmentation, which the paper does not mention for the
classifier; batch norm in train mode while fine-tuning, eval mode to predict;
batch order and initialisation from generators derived from ``seed`` and the
cycle).  The paper trains the representation contrastively across stages and
fine-tunes a classifier from it; we fine-tune a copy so that acquisition
(clusters, radii) sees the contrastive representation only: fine-tuning never
changes it.  ``classifier="probe"``: a linear layer on the frozen, normalised
features (the behaviour before fine-tuning existed, same numbers).

:meth:`state_dict` / :meth:`load_state_dict` save and restore the encoder,
projection head, probe and fine-tuned classifier with the training stage and
the cycle's clusters, so a checkpoint (the loop's holds them) resumes exactly.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np
import torch

from ..contrastive import ContrastiveRepresentation, FineTunedClassifier, classifier_set
from ..exceptions import InvalidParameterError
from ..ops.clustering import kmeans
from .base import Strategy, a_bool, one_of, optional_int, positive_int
from .registry import register

if TYPE_CHECKING:
    from ..model import ALModel
    from ..pools import Pools

__all__ = ["radius_order", "cluster_quotas", "ContrastiveDistance", "ContrastiveRandom"]


def _real(low: float, high: float = np.inf, *, low_open: bool = False) -> Callable[[str, Any], None]:
    """Checker: a real number (not a bool, not NaN) in ``[low, high)`` (``(low, high)`` with ``low_open``)."""

    def check(name: str, value: Any) -> None:
        real = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not (real and (low < value if low_open else low <= value) and value < high):
            raise InvalidParameterError(f"{name} must be a real number in {'(' if low_open else '['}{low}, {high}), got {value!r}")

    return check


def _seed_of(*parts: int) -> int:
    """A 32-bit seed derived from ``parts`` (numpy SeedSequence)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def radius_order(dist: np.ndarray, radius: float) -> np.ndarray:
    """Order of picks inside one cluster: within ``radius`` by decreasing distance, then outside by increasing distance.

    Ties go to the lower position.  Returns positions into ``dist``.
    """
    dist = np.asarray(dist, dtype=np.float64)
    pos = np.arange(dist.size)
    inside = dist <= radius
    a = pos[inside][np.lexsort((pos[inside], -dist[inside]))]
    b = pos[~inside][np.lexsort((pos[~inside], dist[~inside]))]
    return np.concatenate([a, b]).astype(np.int64)


def cluster_quotas(sizes: np.ndarray, budget: int) -> np.ndarray:
    """Split ``budget`` over clusters proportionally to ``sizes`` (largest remainder), capped at sizes.

    A cluster's surplus goes to the others, again proportionally; the total is
    ``min(budget, sizes.sum())``.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    quota = np.zeros_like(sizes)
    left = min(int(budget), int(sizes.sum()))
    while left > 0:
        room = sizes - quota
        open_ = room > 0
        share = left * room * open_ / room[open_].sum()
        add = np.minimum(np.floor(share).astype(np.int64), room)
        rest = left - int(add.sum())
        if rest > 0:
            frac = np.where(open_ & (add < room), share - np.floor(share), -1.0)
            for j in np.lexsort((np.arange(frac.size), -frac))[:rest]:
                if frac[j] >= 0:
                    add[j] += 1
        if add.sum() == 0:  # pragma: no cover - defensive
            add[np.flatnonzero(open_)[0]] += 1
        quota += add
        left -= int(add.sum())
    return quota


class _ContrastiveClusters(Strategy):
    """Shared machinery: the representation, its per-cycle training, clusters and quotas."""

    requires: ClassVar[frozenset[str]] = frozenset()
    _constraints: ClassVar[dict[str, Callable[[str, Any], None]]] = {
        "seed": optional_int,
        "first_epochs": positive_int,
        "later_epochs": positive_int,
        "batch_size": positive_int,
        "rep_dim": positive_int,
        "proj_dim": positive_int,
        "kmeans_iter": positive_int,
        "classifier_steps": positive_int,
        "classifier": one_of("finetune", "probe"),
        "classifier_epochs": positive_int,
        "classifier_batch": positive_int,
        "classifier_lr": _real(0.0, low_open=True),
        "classifier_weight_decay": _real(0.0),
        "label_smoothing": _real(0.0, 1.0),
        "drop_ood_cluster": a_bool,
        "no_reject_radius": one_of("median", "max"),
        "encoder": one_of("auto", "cnn", "mlp"),
    }
    # Set lazily by _ensure / load_state_dict (read with getattr before the first select).
    _rep: ContrastiveRepresentation | None
    _pools_uid: int | None
    _stages: int
    _state: dict[str, Any] | None
    _clf: FineTunedClassifier | None
    _input_shape: tuple[int, ...]

    def __init__(
        self,
        *,
        seed: int | None = 0,
        first_epochs: int = 100,
        later_epochs: int = 20,
        batch_size: int = 256,
        lr: float = 1e-3,
        temperature: float = 0.07,
        rep_dim: int = 128,
        proj_dim: int = 128,
        kmeans_iter: int = 50,
        classifier_steps: int = 300,
        drop_ood_cluster: bool = True,
        no_reject_radius: str = "median",
        encoder: str = "auto",
        classifier: str = "finetune",
        classifier_epochs: int = 100,
        classifier_batch: int = 32,
        classifier_lr: float = 1e-3,
        classifier_weight_decay: float = 1e-6,
        label_smoothing: float = 0.1,
    ) -> None:
        self.encoder = encoder
        self.seed = seed
        self.first_epochs = first_epochs
        self.later_epochs = later_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.temperature = temperature
        self.rep_dim = rep_dim
        self.proj_dim = proj_dim
        self.kmeans_iter = kmeans_iter
        self.classifier_steps = classifier_steps
        self.drop_ood_cluster = drop_ood_cluster
        self.no_reject_radius = no_reject_radius
        self.classifier = classifier
        self.classifier_epochs = classifier_epochs
        self.classifier_batch = classifier_batch
        self.classifier_lr = classifier_lr
        self.classifier_weight_decay = classifier_weight_decay
        self.label_smoothing = label_smoothing

    # ------------------------------------------------------------ state
    def _num_classes(self, pools: "Pools") -> int:
        if pools.num_classes is not None:
            return int(pools.num_classes)
        labels = pools.labels
        return int(labels.max()) + 1 if labels.size else 1

    def _ensure(self, model: "ALModel", pools: "Pools") -> dict[str, Any]:
        """Train the representation once per (pools, cycle) and cache features and clusters."""
        self._adopt(pools, model.device)
        state = getattr(self, "_state", None)
        key = (pools.uid, int(pools.cycle))
        if state is not None and state["key"] == key:
            return state
        if not (self.temperature > 0):
            raise InvalidParameterError(f"temperature must be > 0, got {self.temperature!r}")
        device = model.device
        k = self._num_classes(pools)
        seed = 0 if self.seed is None else int(self.seed)
        rep = getattr(self, "_rep", None)
        if rep is None or getattr(self, "_pools_uid", None) != pools.uid:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                rep = ContrastiveRepresentation(pools.inputs(np.arange(1))[0], k, rep_dim=self.rep_dim, proj_dim=self.proj_dim, arch=self.encoder)
            self._rep, self._pools_uid, self._stages = rep.to(device), pools.uid, 0
            self._input_shape = tuple(pools.inputs(np.arange(1)).shape[1:])
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, int(pools.cycle), self._stages]).generate_state(1)[0]))
        lab, rej = pools.labeled, pools.rejected
        lab_x = np.concatenate([lab, rej])
        lab_y = torch.cat([torch.as_tensor(pools.labels_of(lab), dtype=torch.long), torch.full((rej.size,), k, dtype=torch.long)])
        epochs = self.first_epochs if self._stages == 0 else self.later_epochs
        with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
            torch.manual_seed(int(gen.initial_seed()) + 1)
            loss = rep.fit_contrastive(
                pools.unlabeled, lab_x, lab_y, epochs=epochs, batch_size=self.batch_size, lr=self.lr,
                temperature=self.temperature, gen=gen, device=device, inputs=pools.inputs,
            )
            self._stages += 1
            feats = rep.features(pools.inputs, np.arange(pools.n), device)
            self._fit_classifier(feats, pools, k, gen, seed)
        assign, centroids = kmeans(feats, min(k + 1, pools.n), n_iter=self.kmeans_iter, seed=seed + int(pools.cycle), device=device)
        dist = (feats - centroids[assign]).norm(dim=1)
        self._state = {"key": key, "assign": assign.cpu().numpy(), "dist": dist.cpu().numpy(), "k": k, "loss": loss}
        return self._state

    def _fit_classifier(self, feats: torch.Tensor, pools: "Pools", k: int, gen: torch.Generator, seed: int) -> None:
        """The probe on frozen features, or a fine-tuned copy of the encoder (see the module docstring)."""
        idx, targets = classifier_set(pools.labeled, pools.labels_of(pools.labeled), pools.rejected, k, gen)
        if self._rep is None:
            raise InvalidParameterError("the representation is not trained yet: call select first")
        if self.classifier == "probe":
            self._rep.fit_classifier(feats[torch.from_numpy(idx).to(feats.device)], targets, steps=self.classifier_steps)
            return
        cycle = int(pools.cycle)
        clf = FineTunedClassifier(self._rep.encoder, self.rep_dim, k, init_seed=_seed_of(seed, cycle, 2))
        shuffle = torch.Generator().manual_seed(_seed_of(seed, cycle, 1))
        clf.fit(
            pools.inputs, idx, targets, epochs=self.classifier_epochs, batch_size=self.classifier_batch, lr=self.classifier_lr,
            weight_decay=self.classifier_weight_decay, label_smoothing=self.label_smoothing, gen=shuffle, device=feats.device,
        )
        self._clf = clf

    def _plan(self, pools: "Pools", budget: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """Unlabeled members of each cluster (kept clusters first, the dropped one last) and their quotas."""
        st = self._state
        if st is None:
            raise InvalidParameterError("no clusters yet: call select first")
        assign, n_clusters = st["assign"], int(st["assign"].max()) + 1
        rej = pools.rejected
        size = np.bincount(assign, minlength=n_clusters)
        order = list(range(n_clusters))
        if self.drop_ood_cluster and rej.size:
            share = np.bincount(assign[rej], minlength=n_clusters) / np.maximum(size, 1)
            dropped = int(np.argmax(share))
            order.remove(dropped)
        else:
            dropped = -1
        unl = pools.unlabeled
        members = [unl[assign[unl] == c] for c in order]
        quotas = cluster_quotas(np.array([m.size for m in members]), budget)
        if dropped >= 0:
            members.append(unl[assign[unl] == dropped])
            quotas = np.append(quotas, budget - quotas.sum())
        return members, quotas, np.array(order + ([dropped] if dropped >= 0 else []))

    # ------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        """The representation (encoder, projection, probe weights), the fine-tuned classifier, the stage and this cycle's clusters.

        Empty before the first ``select``.  The clusters (assignments and
        centroid distances of the cycle) are kept so that a run resumed inside
        a quota-mode cycle re-applies the radius rule to the same clusters
        without retraining.
        """
        rep = getattr(self, "_rep", None)
        if rep is None:
            return {}
        st = getattr(self, "_state", None)
        clusters = None if st is None else {
            "cycle": int(st["key"][1]), "assign": torch.as_tensor(st["assign"]), "dist": torch.as_tensor(st["dist"]),
            "k": int(st["k"]), "loss": float(st["loss"]),
        }
        clf = getattr(self, "_clf", None)
        return {
            "input_shape": list(self._input_shape), "num_classes": rep.num_classes, "stages": int(self._stages),
            "weights": {k: v.detach().cpu() for k, v in rep.state_dict().items()}, "clusters": clusters,
            "finetuned": None if clf is None else {k: v.detach().cpu() for k, v in clf.state_dict().items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; the representation is bound to the pools of the next ``select``."""
        self._rep, self._state, self._stages, self._clf = None, None, 0, None
        if not state:
            return
        self._input_shape = tuple(int(s) for s in state["input_shape"])
        with torch.random.fork_rng(devices=[]):  # the weights are overwritten: leave the global RNG as it was
            rep = ContrastiveRepresentation(torch.zeros(self._input_shape), int(state["num_classes"]), rep_dim=self.rep_dim, proj_dim=self.proj_dim, arch=self.encoder)
        rep.load_state_dict(state["weights"])
        self._rep, self._stages, self._pools_uid = rep, int(state["stages"]), None  # None: adopt the next pools
        if state.get("finetuned") is not None:  # absent from checkpoints written before fine-tuning existed
            clf = FineTunedClassifier(rep.encoder, self.rep_dim, rep.num_classes)
            clf.load_state_dict(state["finetuned"])
            self._clf = clf
        c = state["clusters"]
        if c is not None:
            self._state = {"key": (None, int(c["cycle"])), "assign": c["assign"].numpy(), "dist": c["dist"].numpy(), "k": int(c["k"]), "loss": float(c["loss"])}

    def _adopt(self, pools: "Pools", device: torch.device) -> None:
        """Bind a loaded representation (and its clusters) to the pools it now serves."""
        rep = getattr(self, "_rep", None)
        if rep is None or getattr(self, "_pools_uid", 0) is not None:
            return
        self._pools_uid = pools.uid
        self._rep = rep.to(device)
        clf = getattr(self, "_clf", None)
        if clf is not None:
            self._clf = clf.to(device)
        st = getattr(self, "_state", None)
        if st is not None:
            st["key"] = (pools.uid, st["key"][1])

    # ------------------------------------------------------------ evaluation
    def predict(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """In-task class predictions (argmax over the K task classes) of the fine-tuned classifier or the probe."""
        rep = getattr(self, "_rep", None)
        if rep is None:
            raise InvalidParameterError("the representation is not trained yet: call select (or evaluate with pools) first")
        if self.classifier == "probe":
            return rep.predict(x, batch_size)
        clf = getattr(self, "_clf", None)
        if clf is None:
            raise InvalidParameterError(
                "no fine-tuned classifier: the state was saved with classifier='probe' or before fine-tuning existed; "
                "build the strategy with classifier='probe' to use it, or call select on the next cycle"
            )
        return clf.predict(x, batch_size)

    def evaluate(self, model: "ALModel", pools: "Pools", x: torch.Tensor, y: torch.Tensor) -> float:
        """Accuracy of :meth:`predict` (the fine-tuned classifier, or the probe), trained for the current cycle if not yet."""
        self._ensure(model, pools)
        return float((self.predict(x) == torch.as_tensor(y).cpu()).float().mean())


@register("contrastive_distance")
class ContrastiveDistance(_ContrastiveClusters):
    """Contrastive cluster-distance acquisition (see the module docstring for the rule and its defaults)."""

    def select(self, model: "ALModel", pools: "Pools", budget: int) -> np.ndarray:
        st = self._ensure(model, pools)
        members, quotas, clusters = self._plan(pools, budget)
        assign, dist = st["assign"], st["dist"]
        rej = pools.rejected
        picks = []
        for c, mem, q in zip(clusters, members, quotas):
            if q <= 0:
                continue
            rej_c = rej[assign[rej] == c]
            if rej_c.size:
                radius = float(dist[rej_c].min())
            else:
                all_c = np.flatnonzero(assign == c)
                radius = float(np.median(dist[all_c]) if self.no_reject_radius == "median" else dist[all_c].max())
            picks.append(mem[radius_order(dist[mem], radius)[:q]])
        return np.concatenate(picks).astype(np.int64)


@register("contrastive_random")
class ContrastiveRandom(_ContrastiveClusters):
    """Random(CL): random picks per contrastive cluster, proportional to its unlabeled size."""

    def select(self, model: "ALModel", pools: "Pools", budget: int) -> np.ndarray:
        self._ensure(model, pools)
        members, quotas, _ = self._plan(pools, budget)
        rng = self.rng(pools)
        picks = [rng.choice(mem, size=int(q), replace=False) for mem, q in zip(members, quotas) if q > 0]
        return np.concatenate(picks).astype(np.int64)
