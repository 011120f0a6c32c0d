"""Core-set (Sener & Savarese 2018): k-center greedy on penultimate features."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np

from .. import distributed as D
from ..ops.kcenter import kcenter_greedy
from ..ops.kcenter_dist import kcenter_greedy_distributed
from .base import Strategy, one_of, optional_int, positive_int
from .registry import register

if TYPE_CHECKING:
    from ..model import ALModel
    from ..pools import Pools

__all__ = ["CoreSet"]


@register("coreset")
class CoreSet(Strategy):
    """k-center greedy from the labeled set, over the unlabeled pool.

    Parameters
    ----------
    metric : {"euclidean", "cosine"}
        Distance (the paper uses Euclidean).
    feature : str
        Model output the distances are computed on (default the penultimate
        ``"embeddings"``; any output the model provides works, e.g. an
        auxiliary head's vectors).
    method : {"auto", "plain", "pruned"}
        k-center implementation (all exact; see :func:`activelearn.ops.kcenter_greedy`).
    chunk_size : int
        Rows per distance block (bounds memory).
    seed : int, optional
        Seeds the first center when nothing is labeled yet.

    Notes
    -----
    In a ``torch.distributed`` run (:func:`activelearn.distributed.is_distributed`)
    every rank embeds only its contiguous shard of ``unlabeled + labeled`` and
    the k-center runs sharded (:func:`activelearn.ops.kcenter_greedy_distributed`):
    same picks as one process, ``method`` is not used there.
    """

    requires = frozenset({"embeddings"})
    _constraints: ClassVar[dict[str, Callable[[str, Any], None]]] = {
        "metric": one_of("euclidean", "cosine"),
        "method": one_of("auto", "plain", "pruned"),
        "chunk_size": positive_int,
        "seed": optional_int,
    }

    def __init__(
        self,
        *,
        metric: str = "euclidean",
        feature: str = "embeddings",
        method: str = "auto",
        chunk_size: int = 65536,
        seed: int | None = None,
    ) -> None:
        self.metric = metric
        self.feature = feature
        self.method = method
        self.chunk_size = chunk_size
        self.seed = seed

    def select(self, model: "ALModel", pools: "Pools", budget: int) -> np.ndarray:
        unlabeled, labeled = pools.unlabeled, pools.labeled
        idx = np.concatenate([unlabeled, labeled])
        is_center = np.zeros(idx.size, dtype=bool)
        is_center[unlabeled.size :] = True
        first_seed = int(self.rng(pools).integers(2**31 - 1))
        if D.is_distributed():
            # each rank embeds only its contiguous shard of the rows and keeps it for the k-center
            a, b = D.shard_range(idx.size)
            local = model.outputs(pools, idx[a:b], self.feature, local=True)[self.feature]
            picks = kcenter_greedy_distributed(
                local, budget, labeled=is_center, metric=self.metric,
                chunk_size=self.chunk_size, device=model.device, seed=first_seed,
            )
            return idx[picks]
        feats = model.outputs(pools, idx, self.feature)[self.feature]
        picks = kcenter_greedy(
            feats, budget, labeled=is_center, metric=self.metric, method=self.method,
            chunk_size=self.chunk_size, device=feats.device, seed=first_seed,
        )
        return idx[picks]
