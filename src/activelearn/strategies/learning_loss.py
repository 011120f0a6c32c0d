"""Learning Loss for active learning (Yoo & Kweon, CVPR 2019)."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np

from ..exceptions import InvalidParameterError
from ..extensions.loss_prediction import LossPredictionModule
from .base import ScoreStrategy, optional_int, positive_int
from .registry import register

if TYPE_CHECKING:
    from ..model import ALModel, ModelExtension
    from ..pools import Pools

__all__ = ["LearningLoss"]


def _number(lo: float, hi: float | None = None) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value) >= lo and (hi is None or float(value) <= hi)
        if not ok:
            rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
            raise InvalidParameterError(f"{name} must be a number {rng}, got {value!r}")

    return check


@register("learning_loss")
class LearningLoss(ScoreStrategy):
    """Pick the samples whose loss the attached loss-prediction module predicts highest.

    The strategy attaches a :class:`~activelearn.extensions.LossPredictionModule`
    (one branch per backbone stage, trained with the margin ranking loss, taps
    detached after ``detach_at`` of the epochs).  Each cycle it scores a seeded
    random subset of ``subset`` unlabeled samples (paper: 10,000) with the
    evaluation transform (no augmentation) and keeps the top ``budget``.
    ``score`` works on any indices, so it can squeeze another strategy's
    candidates (``get("dacs+learning_loss")``).

    Parameters
    ----------
    subset : int or None
        Size of the random subset scored per cycle (None: the whole pool).
    hidden : int
        Width of each branch of the module (paper: 128).
    margin : float
        Ranking-loss margin (paper: 1.0).
    weight : float
        Weight of the ranking loss (paper: 1.0).
    detach_at : float
        Fraction of the epochs after which the taps are detached (paper: 0.6).
    seed : int, optional
        Seeds the random subset.
    """

    requires = frozenset({"predicted_loss"})
    _constraints: ClassVar[dict[str, Callable[[str, Any], None]]] = {
        "hidden": positive_int,
        "margin": _number(0.0),
        "weight": _number(0.0),
        "detach_at": _number(0.0, 1.0),
        "subset": optional_int,
    }

    def __init__(
        self,
        *,
        subset: int | None = 10_000,
        hidden: int = 128,
        margin: float = 1.0,
        weight: float = 1.0,
        detach_at: float = 0.6,
        seed: int | None = None,
    ) -> None:
        super().__init__(subset=subset, seed=seed)
        self.hidden = hidden
        self.margin = margin
        self.weight = weight
        self.detach_at = detach_at

    def model_extensions(self) -> list["ModelExtension"]:
        self.validate_params()
        return [LossPredictionModule(hidden=self.hidden, margin=self.margin, weight=self.weight, detach_at=self.detach_at)]

    def score(self, model: "ALModel", pools: "Pools", indices: np.ndarray) -> np.ndarray:
        """The predicted loss of each index (higher = pick first)."""
        return model.outputs(pools, indices, "predicted_loss")["predicted_loss"].double().reshape(-1).cpu().numpy()
