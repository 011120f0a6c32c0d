"""The classic baselines: random, entropy, least confidence, margin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np
import torch

from .base import ScoreStrategy, Strategy, a_bool, optional_int, predicted_in_task, require_softmax
from .registry import register

if TYPE_CHECKING:
    from ..model import ALModel
    from ..pools import Pools

__all__ = ["RandomSampling", "Entropy", "LeastConfidence", "Margin", "BEntropy", "probabilities"]


@register("random")
class RandomSampling(Strategy):
    """Uniform random picks from the unlabeled pool (seeded).

    ``skip_predicted_ood=True``: draw among the samples the model does not
    predict as "not in task" (model built with ``open_set=True``), filling up
    at random from the others if too few remain (see :class:`ScoreStrategy`).
    """

    _constraints: ClassVar[dict[str, Callable[[str, Any], None]]] = {"seed": optional_int, "skip_predicted_ood": a_bool}

    def __init__(self, *, seed: int | None = None, skip_predicted_ood: bool = False) -> None:
        self.seed = seed
        self.skip_predicted_ood = skip_predicted_ood

    def select(self, model: "ALModel", pools: "Pools", budget: int) -> np.ndarray:
        rng = self.rng(pools)
        pool = pools.unlabeled
        if not self.skip_predicted_ood:
            return rng.choice(pool, size=budget, replace=False)
        keep = predicted_in_task(model, pools, pool)
        first = rng.permutation(pool[keep])[:budget]
        rest = rng.permutation(pool[~keep])[: budget - first.size]
        return np.concatenate([first, rest])


def probabilities(model: "ALModel", pools: "Pools", indices: np.ndarray) -> torch.Tensor:
    """Class probabilities of ``indices`` (float64, on the model's device)."""
    return model.outputs(pools, indices, "probs")["probs"].double()


class _ProbabilityScore(ScoreStrategy):
    requires = frozenset({"probs"})
    #: the score is only meaningful for probabilities that sum to one over classes
    needs_softmax: ClassVar[bool] = True

    def score(self, model: "ALModel", pools: "Pools", indices: np.ndarray) -> np.ndarray:
        if self.needs_softmax:
            require_softmax(model, self.name or type(self).__name__)
        return self.score_probs(probabilities(model, pools, indices)).cpu().numpy()

    def score_probs(self, p: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract-like
        raise TypeError


@register("entropy")
class Entropy(_ProbabilityScore):
    """Maximum predictive entropy, ``-sum_c p_c log p_c``."""

    def score_probs(self, p: torch.Tensor) -> torch.Tensor:
        return -(p * torch.log(p.clamp_min(1e-12))).sum(dim=1)


@register("least_confidence")
class LeastConfidence(_ProbabilityScore):
    """Least confidence, ``1 - max_c p_c``."""

    def score_probs(self, p: torch.Tensor) -> torch.Tensor:
        return 1.0 - p.max(dim=1).values


@register("margin")
class Margin(_ProbabilityScore):
    """Smallest margin between the two most probable classes (score ``-(p1 - p2)``)."""

    def score_probs(self, p: torch.Tensor) -> torch.Tensor:
        if p.shape[1] < 2:
            return torch.zeros(p.shape[0], dtype=p.dtype, device=p.device)
        top2 = p.topk(2, dim=1).values
        return -(top2[:, 0] - top2[:, 1])


@register("bentropy")
class BEntropy(_ProbabilityScore):
    """Balanced entropy of NCE-Net: the per-class binary entropy, averaged over classes.

    ``-(1/C) sum_c [p_c log p_c + (1 - p_c) log(1 - p_c)]``.  Meant for heads
    whose per-class scores do not sum to one (NCE-Net's prototype head); it also
    runs on softmax probabilities.
    """

    needs_softmax = False

    def score_probs(self, p: torch.Tensor) -> torch.Tensor:
        p = p.clamp(1e-12, 1 - 1e-12)
        return -(p * torch.log(p) + (1 - p) * torch.log1p(-p)).mean(dim=1)
