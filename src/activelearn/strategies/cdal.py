"""CDAL-CS (Agarwal et al. 2020): k-center greedy under contextual diversity."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np

from ..ops.symkl import symkl_kcenter
from .base import Strategy, optional_int, positive_int, require_softmax
from .registry import register

if TYPE_CHECKING:
    from ..model import ALModel
    from ..pools import Pools

__all__ = ["CDAL"]


@register("cdal")
class CDAL(Strategy):
    """Contextual diversity, core-set variant (CDAL-CS).

    Agarwal, Arora, Anand & Arora, "Contextual Diversity for Active
    Learning", ECCV 2020.  The distance between two samples is the symmetric
    KL divergence of their class-probability "context" vectors,
    ``0.5 KL(p || q) + 0.5 KL(q || p)``; the batch is chosen by k-center
    greedy under that distance, starting from the labeled set (the variant
    used as a baseline by the DACS paper).

    How the paper's context reduces for image classification.  The paper
    pools, per image and per predicted class ``c``, the probability vectors of
    the regions (pixels, boxes) predicted as ``c`` into a class context
    ``P^c`` (weighted by the regions' prediction entropy, as we read it) and
    compares two images class by class; the official CS script averages the
    symmetric KL over the classes where both contexts are defined.  With one
    prediction per image, each image has a single non-empty context: its
    probability vector under its predicted class.  Read literally, two images
    predicted as different classes then share no class and have distance 0,
    which would make the k-center blind across classes.  We follow the
    classification ports of CDAL (e.g. DeepCore's ``ContextualDiversity``)
    and compare the full probability vectors of any two images, unweighted.

    Other choices, as made here:

    * Probabilities are the model's softmax ``"probs"``, clamped to ``1e-12``
      before the logarithm.
    * The first pick is the unlabeled sample farthest from the labeled set
      (the official script draws its first pick at random even when samples
      are labeled; we do so only when nothing is labeled, seeded).
    * Ties go to the lowest pool index.  Memory is ``O(N C)`` plus one block.

    Parameters
    ----------
    chunk_size : int
        Rows per distance block.
    seed : int, optional
        Seeds the first pick when nothing is labeled yet.
    """

    requires = frozenset({"probs"})
    _constraints: ClassVar[dict[str, Callable[[str, Any], None]]] = {"chunk_size": positive_int, "seed": optional_int}

    def __init__(self, *, chunk_size: int = 65536, seed: int | None = None) -> None:
        self.chunk_size = chunk_size
        self.seed = seed

    def select(self, model: "ALModel", pools: "Pools", budget: int) -> np.ndarray:
        require_softmax(model, "cdal")  # a KL divergence compares probability vectors
        unlabeled, labeled = pools.unlabeled, pools.labeled
        idx = np.concatenate([unlabeled, labeled])
        is_center = np.zeros(idx.size, dtype=bool)
        is_center[unlabeled.size :] = True
        probs = model.outputs(pools, idx, "probs")["probs"]
        picks = symkl_kcenter(probs, budget, labeled=is_center, chunk_size=self.chunk_size, seed=self.rng(pools))
        return idx[picks]
