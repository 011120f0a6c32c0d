"""TypiClust (Hacohen, Dekel & Weinshall 2022): the most typical sample of the largest uncovered clusters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np
import torch

from ..exceptions import InvalidParameterError
from ..ops.typicality import knn_typicality
from .base import Strategy, a_bool, optional_int, positive_int
from .registry import register

if TYPE_CHECKING:
    from ..model import ALModel
    from ..pools import Pools

__all__ = ["TypiClust", "cluster_embeddings", "typiclust_select"]


def _nonnegative_int(name: str, value: Any) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
        raise InvalidParameterError(f"{name} must be a non-negative int, got {value!r}")


def cluster_embeddings(x: np.ndarray, n_clusters: int, *, seed: int, minibatch_above: int, n_init: int) -> np.ndarray:
    """scikit-learn k-means labels: ``KMeans`` up to ``minibatch_above`` clusters, else
    ``MiniBatchKMeans(batch_size=5000)`` (TypiClust's official code), seeded."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if n_clusters <= minibatch_above:
        km = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed)
    else:
        km = MiniBatchKMeans(n_clusters=n_clusters, batch_size=5000, n_init=3, random_state=seed)
    return np.asarray(km.fit_predict(x), dtype=np.int64)


def cluster_order(clusters: np.ndarray, n_labeled: int, min_cluster_size: int) -> tuple[list[int], list[int]]:
    """Cluster ids by (labeled members ascending, size descending, id ascending).

    ``clusters`` holds the labeled rows first.  Returns the clusters larger
    than ``min_cluster_size`` and then every cluster (the fallback order).
    """
    k = int(clusters.max()) + 1
    size = np.bincount(clusters, minlength=k)
    covered = np.bincount(clusters[:n_labeled], minlength=k)
    ids = np.flatnonzero(size > 0)
    order = ids[np.lexsort((ids, -size[ids], covered[ids]))].tolist()
    return [c for c in order if size[c] > min_cluster_size], order


def typiclust_select(
    feats: torch.Tensor, clusters: np.ndarray, n_labeled: int, budget: int, *,
    n_neighbors: int = 20, min_cluster_size: int = 5, squared: bool = False, chunk_size: int = 1024,
) -> np.ndarray:
    """Rows (labeled rows first in ``feats``/``clusters``) picked by TypiClust, in pick order.

    Clusters are visited round-robin in :func:`cluster_order`; from each the
    unlabeled, unpicked member of highest typicality (``k = min(n_neighbors,
    m // 2)`` among its ``m`` remaining members) is taken, ties to the lowest
    row.  Once the large clusters are exhausted, all clusters are visited.
    """
    large, every = cluster_order(clusters, n_labeled, min_cluster_size)
    avail = clusters.copy()
    avail[:n_labeled] = -1
    picks: list[int] = []
    queue = large
    while len(picks) < budget:
        took = False
        for c in queue:
            members = np.flatnonzero(avail == c)
            if members.size == 0:
                continue
            k = min(n_neighbors, members.size // 2)
            if k == 0:
                best = int(members[0])
            else:
                typ = knn_typicality(feats[torch.as_tensor(members, device=feats.device)], k, squared=squared, chunk_size=chunk_size)
                best = int(members[int(torch.argmax(typ))])
            picks.append(best)
            avail[best] = -1
            took = True
            if len(picks) == budget:
                break
        if not took:
            queue = every
    return np.asarray(picks, dtype=np.int64)


@register("typiclust")
class TypiClust(Strategy):
    """Typical clustering for low budgets.

    Hacohen, Dekel & Weinshall, "Active Learning on a Budget: Opposite
    Strategies Suit High and Low Budgets", ICML 2022.  The model's
    ``"embeddings"`` of the labeled and unlabeled samples are clustered
    into ``min(|L| + b, max_clusters)`` clusters; each pick is the most
    typical unlabeled sample of the largest cluster holding no labeled sample,
    with typicality ``1 / (mean distance to the k nearest neighbours within
    the cluster + 1e-5)``.

    Choices the paper leaves open, as made here (from the official code
    unless said otherwise):

    * Clustering: scikit-learn ``KMeans`` (``n_init`` restarts) for at most
      ``minibatch_above`` = 50 clusters, else ``MiniBatchKMeans`` with batch
      size 5000 and 3 restarts; seeded from :meth:`Strategy.rng`.  At most
      ``max_clusters`` = 500 clusters.  The paper clusters self-supervised
      (SimCLR) features; here it is whatever ``"embeddings"`` the model gives.
    * Order: clusters by fewest labeled members, then largest size (counted
      over labeled and unlabeled), then lowest id; clusters of at most
      ``min_cluster_size`` = 5 samples are skipped.  With more budget than
      clusters the order is cycled; once the large clusters run out of
      unlabeled samples every cluster is cycled.
    * Typicality is computed over the cluster's unlabeled, not yet picked
      members, recomputed after every pick, with ``k = min(20, m // 2)`` for
      ``m`` such members (the paper's ``k = 20``; the halving guards small
      clusters); a lone member is picked outright.
    * Distances are Euclidean as the paper states; ``squared=True`` averages
      squared ones as the official faiss code does.  Ties go to the lowest
      pool index.  Neighbour search is blocked (``chunk_size x m`` memory).

    Parameters
    ----------
    n_neighbors, max_clusters, min_cluster_size, minibatch_above, n_init : int
        As above.
    squared : bool
        Squared Euclidean distances in the typicality.
    chunk_size : int
        Rows per neighbour-search block.
    seed : int, optional
        Seeds the k-means.
    """

    requires = frozenset({"embeddings"})
    _constraints: ClassVar[dict[str, Callable[[str, Any], None]]] = {
        "n_neighbors": positive_int, "max_clusters": positive_int, "minibatch_above": positive_int,
        "n_init": positive_int, "chunk_size": positive_int, "squared": a_bool, "seed": optional_int,
        "min_cluster_size": _nonnegative_int,
    }

    def __init__(
        self, *, n_neighbors: int = 20, max_clusters: int = 500, min_cluster_size: int = 5,
        minibatch_above: int = 50, n_init: int = 10, squared: bool = False, chunk_size: int = 1024,
        seed: int | None = None,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.max_clusters = max_clusters
        self.min_cluster_size = min_cluster_size
        self.minibatch_above = minibatch_above
        self.n_init = n_init
        self.squared = squared
        self.chunk_size = chunk_size
        self.seed = seed

    def select(self, model: "ALModel", pools: "Pools", budget: int) -> np.ndarray:
        labeled, unlabeled = pools.labeled, pools.unlabeled
        idx = np.concatenate([labeled, unlabeled])
        feats = model.outputs(pools, idx, "embeddings")["embeddings"]
        n_clusters = min(labeled.size + budget, self.max_clusters, idx.size)
        seed = int(self.rng(pools).integers(2**31 - 1))
        clusters = cluster_embeddings(
            feats.detach().cpu().numpy(), n_clusters, seed=seed, minibatch_above=self.minibatch_above, n_init=self.n_init
        )
        picks = typiclust_select(
            feats, clusters, labeled.size, budget, n_neighbors=self.n_neighbors,
            min_cluster_size=self.min_cluster_size, squared=self.squared, chunk_size=self.chunk_size,
        )
        return idx[picks]
