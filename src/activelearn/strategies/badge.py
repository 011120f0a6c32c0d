"""BADGE (Ash et al. 2020): k-means++ seeding on hypothetical-label gradient embeddings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np

from ..ops.badge import badge_kmeanspp
from .base import Strategy, one_of, optional_int, positive_int, require_softmax
from .registry import register

if TYPE_CHECKING:
    from ..model import ALModel
    from ..pools import Pools

__all__ = ["BADGE"]


@register("badge")
class BADGE(Strategy):
    """Diverse, uncertain gradient embeddings picked by k-means++ seeding.

    Ash, Zhang, Krishnamurthy, Langford & Agarwal, "Deep Batch Active Learning
    by Diverse, Uncertain Gradient Lower Bounds", ICLR 2020.  Every unlabeled
    sample gets the gradient of the cross-entropy loss with respect to the
    last linear layer's weights, taken at the hypothetical label
    ``yhat = argmax_c p_c``; the batch is the k-means++ seeding (D^2
    sampling) of these vectors.

    Choices the paper leaves open, as made here:

    * Sign and layout: ``g = (p - onehot(yhat)) (x) z``, ``C x d`` flattened
      class by class, with ``z`` the model's ``"embeddings"`` (the input of
      the last linear layer).  This is the gradient of the loss; the official
      code stores its negative, which gives the same distances and picks.
    * Bias: the last layer's bias is left out, as in the paper
      (``dim(g) = C d``) and its code.
    * First center: the sample of largest ``||g||`` (official code; ties to
      the lowest pool index); ``first="random"`` draws it uniformly as in
      plain k-means++.
    * D^2 sampling draws from the seeded generator of :meth:`Strategy.rng`;
      picked samples have weight zero, and should every remaining distance be
      zero (duplicates of the centers) the draw is uniform over unpicked ones.
    * Labeled samples are not centers (the seeding runs over the unlabeled
      pool only, as in the paper's Algorithm 1).
    * ``g`` is never formed: distances factorise (:mod:`activelearn.ops.badge`).

    Parameters
    ----------
    first : {"max_norm", "random"}
        How the first center is chosen (see above).
    chunk_size : int
        Rows per distance block (memory ``chunk_size x d`` plus ``O(U C)``).
    seed : int, optional
        Seeds the D^2 draws (same seed, same picks).
    """

    requires = frozenset({"probs", "embeddings"})
    _constraints: ClassVar[dict[str, Callable[[str, Any], None]]] = {
        "first": one_of("max_norm", "random"),
        "chunk_size": positive_int,
        "seed": optional_int,
    }

    def __init__(self, *, first: str = "max_norm", chunk_size: int = 16384, seed: int | None = None) -> None:
        self.first = first
        self.chunk_size = chunk_size
        self.seed = seed

    def select(self, model: "ALModel", pools: "Pools", budget: int) -> np.ndarray:
        require_softmax(model, "badge")  # the gradient embedding is that of the softmax cross-entropy
        unlabeled = pools.unlabeled
        out = model.outputs(pools, unlabeled, ["probs", "embeddings"])
        picks = badge_kmeanspp(
            out["probs"], out["embeddings"], budget,
            seed=self.rng(pools), first=self.first, chunk_size=self.chunk_size,
        )
        return unlabeled[picks]
