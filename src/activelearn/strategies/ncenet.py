"""NCE-Net (Wan et al., AAAI 2021): a prototype head and rejection/confusion scores."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np
import torch

from ..extensions.prototype import PrototypeHead
from .base import ScoreStrategy, a_bool, one_of, optional_int, positive_int
from .registry import register

if TYPE_CHECKING:
    from ..model import ALModel, ModelExtension
    from ..pools import Pools

__all__ = ["NCENet", "rejection_score", "confusion_score"]


def rejection_score(p: torch.Tensor) -> torch.Tensor:
    """``sum_c (1 - p_c)``: high when every class rejects the sample."""
    return (1.0 - p).sum(dim=1)


def confusion_score(p: torch.Tensor) -> torch.Tensor:
    """``sum_c (1 + p_c - max_c p_c)``: high when several classes accept the sample."""
    return (1.0 + p - p.max(dim=1, keepdim=True).values).sum(dim=1)


@register("ncenet")
class NCENet(ScoreStrategy):
    """Replace the softmax head by NCE-Net's prototype head and rank by its scores.

    The strategy attaches a :class:`~activelearn.extensions.PrototypeHead`
    (``prototypes`` per class, Euclidean-Gaussian or cosine-sigmoid, BCE on
    one-hot targets); the model then predicts by ``argmax_c p_c`` and its
    ``probs`` are per-class scores that do not sum to one.  Selection scores a
    seeded random subset of ``subset`` unlabeled samples (paper: 10,000) by
    ``rejection`` (default) or ``confusion`` and keeps the top ``budget``.
    For the balanced-entropy score of the paper use ``get("bentropy")`` on a
    model carrying this head (e.g. ``get("ncenet+bentropy")`` or attach it).

    Parameters
    ----------
    criterion : {"rejection", "confusion"}
        ``rejection = sum_c (1 - p_c)``; ``confusion = sum_c (1 + p_c - max p)``.
    prototypes : int
        Prototypes per class (default 1).
    distance : {"euclidean", "cosine"}
        Class-score form of the head.  Euclidean follows the paper's main
        equation; on repeated MNIST with an MLP the cosine head trained much
        better (see :mod:`activelearn.extensions.prototype`).
    radius : float, optional
        Initial per-class radius (default: 1 Euclidean, 10 cosine).
    learn_radius : bool, default True
        False keeps the radius fixed at ``radius`` (the paper's "Rejection-" and
        "Confusion-" rows fix it at 0.5: ``get("ncenet", learn_radius=False,
        radius=0.5)``, or ``ncenet:learn_radius=False,radius=0.5`` on the CLI).
    max_grad_norm : float or None, default 5.0
        Gradient-norm clip of every training step while the head is attached
        (our default for stability; ``None`` = the paper's unclipped training;
        see :class:`~activelearn.extensions.PrototypeHead`).
    subset : int or None
        Random subset scored per cycle (None: the whole pool).
    seed : int, optional
        Seeds the random subset.
    """

    requires = frozenset({"prototype_scores"})
    _constraints: ClassVar[dict[str, Callable[[str, Any], None]]] = {
        "criterion": one_of("rejection", "confusion"),
        "prototypes": positive_int,
        "distance": one_of("euclidean", "cosine"),
        "subset": optional_int,
        "learn_radius": a_bool,
    }

    def __init__(
        self,
        *,
        criterion: str = "rejection",
        prototypes: int = 1,
        distance: str = "euclidean",
        radius: float | None = None,
        learn_radius: bool = True,
        max_grad_norm: float | None = 5.0,
        subset: int | None = 10_000,
        seed: int | None = None,
    ) -> None:
        super().__init__(subset=subset, seed=seed)
        self.criterion = criterion
        self.prototypes = prototypes
        self.distance = distance
        self.radius = radius
        self.learn_radius = learn_radius
        self.max_grad_norm = max_grad_norm

    def model_extensions(self) -> list["ModelExtension"]:
        self.validate_params()
        return [
            PrototypeHead(
                prototypes=self.prototypes, distance=self.distance, radius=self.radius,
                learn_radius=self.learn_radius, max_grad_norm=self.max_grad_norm,
            )
        ]

    def score(self, model: "ALModel", pools: "Pools", indices: np.ndarray) -> np.ndarray:
        p = model.outputs(pools, indices, "prototype_scores")["prototype_scores"].double()
        fn = rejection_score if self.criterion == "rejection" else confusion_score
        return fn(p).cpu().numpy()
