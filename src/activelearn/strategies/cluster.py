"""Cluster annotation (Perez, Lebret & Aberer): ask the expert to label whole clusters.

Each cycle the unlabeled pool is clustered by k-means on the model's
penultimate features (``cluster_size`` members per cluster on average; the
paper aims at 50-100) and whole clusters are proposed to the oracle, one
interaction each: the expert gives the cluster's modal class when it is at
least 80% of the members and declines otherwise (see
:class:`~activelearn.oracle.SimulatedOracle`).  The strategy returns a
:class:`~activelearn.oracle.Query` whose ``groups`` are the clusters; the loop
counts ``len(indices) + len(groups)`` interactions against the budget.

Scenarios of the paper, with any sample strategy (``sample``, default
``"entropy"``, the paper's uncertainty sampling):

- ``"cluster"``: cluster-only.
- ``"sample+cluster"``: samples first, then clusters (the paper's uncertain+cluster).
- ``"cluster+sample"``: clusters first, then samples (cluster+uncertain).

Order within an iteration: the loop asks one query per iteration, so the
expert's answers are not known between the phases.  sample+cluster picks the
samples on the whole unlabeled pool and clusters the rest.  cluster+sample
with ``rank="all"`` clusters the whole unlabeled pool first and takes the
samples from the members of the clusters the model predicts the expert will
decline (see :meth:`ClusterAnnotation._clusters_then_samples`); with the
pre-screening ranks (or a sample strategy without per-sample scores) it picks
like sample+cluster, only the split differs.

The split between the two phases: with ``switch_at=None`` (default, the
paper's protocol) every cycle gives ``split`` of its budget to the first phase,
so a mixed scenario asks samples AND clusters in every iteration (the paper:
500 samples + 500 clusters per CIFAR-10 iteration); with ``switch_at=k`` the
first phase runs until ``pools.n_interactions`` reaches ``k`` (a cycle that
crosses it is shared), i.e. the run's interaction budget is split once (not
the paper's protocol; kept as an option).

Which clusters to propose: ``rank="all"`` (default, the paper's protocol)
clusters the unlabeled pool into exactly as many k-means clusters as the
cycle's cluster interactions and proposes every one of them, with no
pre-screening (the paper fixes the number of clusters per iteration, 1,000 on
CIFAR-10's 50,000 images, i.e. 50 members on average; the loop asks a query of
exactly the cycle's budget, so the budget sets the number of clusters and
``cluster_size`` is not used: choose the budget so that ``pool / clusters``
is 50-100).  The other ranks cluster into ``cluster_size`` members on average
and pre-screen (not in the paper): ``rank="purity"`` proposes the clusters
whose members the current model most agrees on (the largest share of one
predicted class; the expert's 80% rule makes such clusters the likeliest to be
accepted; the model's predictions are used, never the hidden labels);
``rank="compact"`` proposes the tightest clusters (smallest mean squared
distance to their centroid in the clustered feature space); ``rank="random"``
draws clusters uniformly (seeded).

Features: any model output (default the penultimate ``"embeddings"``, as in the
paper, whose features come from an ImageNet-pretrained network), or
``feature="inputs"`` for the flattened pool inputs (useful when the model is
still too weak for its embeddings to group classes, e.g. in the first cycles
from scratch).
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np
import torch

from ..exceptions import InvalidParameterError
from ..ops.clustering import kmeans
from .base import ScoreStrategy, Strategy, nonnegative_real, one_of, optional_int, positive_int
from .registry import get, get_class, register

if TYPE_CHECKING:
    from ..model import ALModel
    from ..pools import Pools

__all__ = ["ClusterAnnotation", "propose_clusters"]


def _fraction(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) <= 1.0:
        raise InvalidParameterError(f"{name} must be a fraction in [0, 1], got {value!r}")


def _sample_name(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise InvalidParameterError(f"{name} must be the registry name of a sample strategy, got {value!r}")
    get_class(value)  # raises UnknownStrategyError with suggestions


def propose_clusters(
    features: torch.Tensor,
    indices: np.ndarray,
    n_clusters: int,
    *,
    cluster_size: int,
    seed: int,
    n_iter: int = 30,
    chunk_size: int = 16384,
    sklearn_below: int = 0,
    copy: bool = True,
    tol: float = 1e-6,
) -> list[np.ndarray]:
    """k-means over ``features`` (rows of ``indices``) into groups of ``cluster_size`` on average.

    Uses ``k = max(round(N / cluster_size), n_clusters)`` (capped at ``N``) so
    that at least ``n_clusters`` groups exist; if k-means leaves fewer non-empty
    clusters, the largest ones are halved until there are enough.  Returns the
    non-empty groups as arrays of pool indices.  k-means is
    :func:`activelearn.ops.kmeans` (scikit-learn's ``KMeans`` on the CPU);
    ``copy=False`` lets it centre ``features`` in place and ``tol`` is its
    stopping tolerance (see there).
    """
    n = indices.size
    k = int(min(n, max(round(n / cluster_size), n_clusters, 1)))
    labels, _ = kmeans(features, k, n_iter=n_iter, seed=seed, chunk_size=chunk_size, copy=copy, tol=tol)
    lab = labels.cpu().numpy()
    order = np.argsort(lab, kind="stable")
    cuts = np.flatnonzero(np.diff(lab[order])) + 1
    groups = [indices[g] for g in np.split(order, cuts) if g.size]
    while len(groups) < n_clusters:
        big = int(np.argmax([g.size for g in groups]))
        g = groups.pop(big)
        groups.extend([g[: g.size // 2], g[g.size // 2 :]])
    return groups


@register("cluster_annotation")
class ClusterAnnotation(Strategy):
    """Propose whole clusters to the oracle, alone or with a sample strategy.

    Parameters
    ----------
    scenario : {"cluster", "sample+cluster", "cluster+sample"}
        Cluster-only, or the two phases in that order (see the module docs).
    sample : str
        Registry name of the sample strategy (default ``"entropy"``).
    split : float
        Fraction of each cycle's budget for the first phase (``switch_at=None``).
    switch_at : int, optional
        Interaction count at which the first phase ends (a run-level split).
    cluster_size : int
        Average members per cluster (default 75: within the paper's 50-100);
        not used by ``rank="all"``, where the budget sets the cluster count.
    rank : {"all", "purity", "compact", "random"}
        ``"all"`` (default, the paper): every k-means cluster is proposed;
        otherwise how clusters are pre-screened (see the module docs).
    feature : str
        Model output clustered (default the penultimate ``"embeddings"``), or
        ``"inputs"`` for the flattened inputs.
    n_iter, chunk_size : int
        k-means iterations and distance block rows (torch path only, used for
        features on a GPU).
    tol : float
        k-means' stopping tolerance (:func:`activelearn.ops.kmeans`; default
        1e-6, with which the committed results were made).  ``tol=0`` stops
        only at ``n_iter`` iterations or strict convergence (the paper's
        fixed iteration count) and spares scikit-learn's features-sized
        tolerance temporary (see Notes); the clusters can differ.
    sklearn_below : int
        Deprecated, ignored: k-means runs in scikit-learn for features on the
        CPU (see :func:`activelearn.ops.kmeans`).

    Notes
    -----
    Memory (every rank; measured by ``benchmarks/cluster_memory.py``): the
    gathered features of the unlabeled rows (k-means centres them in place,
    ``copy=False``, instead of copying them), ``O(N)`` labels, k-means'
    finiteness check ``chunk_size`` rows at a time and scikit-learn's blocks
    of 256 rows x ``k`` distances; plus, unless ``tol=0``, one transient
    copy of the features that scikit-learn's ``KMeans`` makes for its
    tolerance (``np.var(x, axis=0)``, freed before the iterations; see
    :func:`activelearn.ops.kmeans`).  With ``tol=0`` the peak is the gathered
    features + ``O(N)`` + one chunk (the finiteness check, ``chunk_size``
    rows, or scikit-learn's blocks, whichever is larger).
    seed : int, optional
        Seeds k-means, random cluster choice and a seeded sample strategy.
    """

    requires = frozenset({"probs", "embeddings"})
    #: modal share at which the paper's expert accepts a cluster (used by cluster+sample, rank="all")
    EXPERT_SHARE: ClassVar[float] = 0.8
    _constraints: ClassVar[dict[str, Callable[[str, Any], None]]] = {
        "scenario": one_of("cluster", "sample+cluster", "cluster+sample"),
        "sample": _sample_name,
        "split": _fraction,
        "switch_at": optional_int,
        "cluster_size": positive_int,
        "rank": one_of("all", "purity", "compact", "random"),
        "n_iter": positive_int,
        "tol": nonnegative_real,
        "chunk_size": positive_int,
        "sklearn_below": optional_int,
        "seed": optional_int,
    }

    def __init__(
        self,
        *,
        scenario: str = "cluster",
        sample: str = "entropy",
        split: float = 0.5,
        switch_at: int | None = None,
        cluster_size: int = 75,
        rank: str = "all",
        feature: str = "embeddings",
        n_iter: int = 30,
        tol: float = 1e-6,
        chunk_size: int = 16384,
        sklearn_below: int = 0,
        seed: int | None = None,
    ) -> None:
        self.scenario = scenario
        self.sample = sample
        self.split = split
        self.switch_at = switch_at
        self.cluster_size = cluster_size
        self.rank = rank
        self.feature = feature
        self.n_iter = n_iter
        self.tol = tol
        self.chunk_size = chunk_size
        self.sklearn_below = sklearn_below
        self.seed = seed

    # ------------------------------------------------------------- phases
    def phase_budgets(self, pools: "Pools", budget: int) -> tuple[int, int]:
        """``(samples, clusters)`` interactions of this cycle."""
        if self.scenario == "cluster":
            return 0, budget
        if self.switch_at is None:
            first = round(self.split * budget)
        else:
            first = int(np.clip(self.switch_at - pools.n_interactions, 0, budget))
        second = budget - first
        return (first, second) if self.scenario == "sample+cluster" else (second, first)

    def sample_strategy(self) -> Strategy:
        cls = get_class(self.sample)
        params = {"seed": self.seed} if "seed" in cls._param_names() else {}
        return get(self.sample, **params)

    def select(self, model: "ALModel", pools: "Pools", budget: int) -> np.ndarray | Any:
        from ..oracle import Query

        n_samples, n_clusters = self.phase_budgets(pools, budget)
        if self.scenario == "cluster+sample" and self.rank == "all" and n_samples and n_clusters:
            ordered = self._clusters_then_samples(model, pools, n_samples, n_clusters)
            if ordered is not None:
                return Query(indices=ordered[0], groups=ordered[1])
        samples = np.zeros(0, dtype=np.int64)
        if n_samples:
            samples = np.asarray(self.sample_strategy().select(model, pools, n_samples), dtype=np.int64)
        if not n_clusters:
            return samples
        rest = np.setdiff1d(pools.unlabeled, samples)
        if self.feature == "inputs":
            feats = pools.inputs(rest).flatten(1).float().to(model.device)
        else:
            feats = model.outputs(pools, rest, self.feature)[self.feature].float()
        if self.rank == "all":
            return Query(indices=samples, groups=self._all_clusters(pools, feats, rest, n_clusters))
        rng = self.rng(pools, 7)
        groups = propose_clusters(
            feats, rest, n_clusters, cluster_size=self.cluster_size, seed=int(rng.integers(2**31 - 1)),
            n_iter=self.n_iter, chunk_size=self.chunk_size, copy=False, tol=self.tol,
        )
        row = np.empty(pools.n, dtype=np.int64)
        row[rest] = np.arange(rest.size)
        chosen = self._choose(model, pools, groups, n_clusters, rng, feats, row)
        return Query(indices=samples, groups=tuple(np.sort(g) for g in chosen))

    def _choose(
        self, model: "ALModel", pools: "Pools", groups: list[np.ndarray], k: int,
        rng: np.random.Generator, feats: torch.Tensor, row: np.ndarray,
    ) -> list[np.ndarray]:
        if self.rank == "random":
            pick = rng.choice(len(groups), size=k, replace=False)
            return [groups[i] for i in sorted(pick)]
        quality = np.empty(len(groups))  # higher = propose first
        for j, g in enumerate(groups):
            if self.rank == "purity":
                pred = model.outputs(pools, g, "probs")["probs"].argmax(1)
                quality[j] = torch.bincount(pred).max().item() / g.size
            else:
                f = feats[torch.from_numpy(row[g]).to(feats.device)].double()
                quality[j] = -float(((f - f.mean(0)) ** 2).sum(1).mean())
        sizes = np.array([g.size for g in groups])
        order = np.lexsort((np.array([g.min() for g in groups]), -sizes, -quality))
        return [groups[i] for i in order[:k]]

    def _all_clusters(self, pools: "Pools", feats: torch.Tensor, rest: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
        """The paper's protocol: k-means into exactly ``k`` clusters of ``rest``, every one proposed.

        ``feats`` are this call's own gathered rows (never the model's cache
        or the pool's inputs), so k-means centres them in place (``copy=False``).
        """
        k = min(k, rest.size)  # fewer unlabeled samples than the budget: one per cluster
        if k == 0:
            return ()
        seed = int(self.rng(pools, 7).integers(2**31 - 1))
        groups = propose_clusters(feats, rest, k, cluster_size=max(rest.size, 1), seed=seed,
                                  n_iter=self.n_iter, chunk_size=self.chunk_size, copy=False, tol=self.tol)
        return tuple(np.sort(g) for g in groups)

    def _clusters_then_samples(
        self, model: "ALModel", pools: "Pools", n_s: int, n_c: int
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]] | None:
        """cluster+sample with ``rank="all"``: cluster the whole unlabeled pool first, then pick the samples.

        The loop asks one query per iteration, so the expert's answers to the
        clusters are not known when the samples are chosen.  The samples are
        therefore the sample strategy's top scores among the members of the
        clusters the model predicts the expert will decline (predicted modal
        share below ``EXPERT_SHARE``, the paper's 80%; model predictions only),
        then among the others; each leaves its cluster, and no cluster is
        emptied.  ``None`` (samples first, as for sample+cluster) when the
        sample strategy has no per-sample score.
        """
        sampler = self.sample_strategy()
        if not isinstance(sampler, ScoreStrategy):
            return None
        rest = pools.unlabeled
        groups = list(self._all_clusters(pools, self._features(model, pools, rest), rest, n_c))
        member = np.concatenate(groups)
        which = np.repeat(np.arange(len(groups)), [g.size for g in groups])
        pred = model.outputs(pools, member, "probs")["probs"].argmax(1).cpu().numpy()
        counts = np.zeros((len(groups), int(pred.max()) + 1))
        np.add.at(counts, (which, pred), 1)
        share = counts.max(1) / counts.sum(1)
        scores = np.nan_to_num(np.asarray(sampler.score(model, pools, member), dtype=np.float64), nan=-np.inf)
        order = np.lexsort((member, -scores, share[which] >= self.EXPERT_SHARE))
        left = np.array([g.size for g in groups])
        picks: list[int] = []
        for i in order:
            if len(picks) == n_s:
                break
            if left[which[i]] > 1:
                left[which[i]] -= 1
                picks.append(int(i))
        if len(picks) < n_s:  # fewer unlabeled samples than the budget needs: cannot happen behind select's check
            return None
        taken = np.zeros(member.size, dtype=bool)
        taken[picks] = True
        kept = tuple(np.sort(g) for g in np.split(member[~taken], np.cumsum(left)[:-1]))
        return np.sort(member[taken]), kept

    def _features(self, model: "ALModel", pools: "Pools", rows: np.ndarray) -> torch.Tensor:
        if self.feature == "inputs":
            return pools.inputs(rows).flatten(1).float().to(model.device)
        return model.outputs(pools, rows, self.feature)[self.feature].float()
