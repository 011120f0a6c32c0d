"""NCE-Net's prototype head (Wan et al., AAAI 2021), replacing the softmax head.

Each class ``c`` owns ``N`` learnable prototypes ``m_cn`` in the embedding
space and a learnable radius ``R_c``.  The per-class score of a feature ``f`` is

* Euclidean-Gaussian (default): ``p_c = max_n exp(-||f - m_cn||^2 / (2 R_c^2))``
  (the nearest prototype of the class gives the max);
* cosine-sigmoid: ``p_c = max_n sigmoid(R_c * cos(f, m_cn))``.

The scores are trained with binary cross-entropy against one-hot targets, the
prediction is ``argmax_c p_c``, and the scores do **not** sum to one over the
classes (``probs_sum_to_one = False``): strategies needing a softmax refuse them.

We follow the paper's equations; the official code instead squashes features
and prototypes with a sigmoid and takes the max over prototype *distances*.
Choices the paper leaves open (measured on repeated MNIST, MLP, SGD lr 0.1):

* the radius is the parameter itself (``|R_c|``, floored at 1e-3), initial
  value ``radius`` (default 1 for Euclidean, 10 for cosine).  A log-radius
  parametrisation or a large initial radius (``sqrt(d)``) let the radius grow
  to tens or hundreds in the first SGD steps and the head never learned (about
  10% accuracy);
* the BCE is averaged over classes and batch (``nn.BCELoss`` style); summed
  over classes, the head did not learn either (10%) with SGD lr 0.1;
* prototypes start as N(0, 1/d) draws.

Even so, the Euclidean head learns more slowly than a softmax head on ReLU
features: it needs a long schedule.  On repeated MNIST with 500 labels (seed 0)
it reaches 86.4% after the paper's 200 epochs (softmax: 87.3%; see
docs/results/rmnist.md), but only 66.8% after 25 epochs (cosine variant 85.0%,
softmax 86.8%; docs/results/rmnist_ll_ncenet.md), and 62% after 20 epochs, or 17%
with DACS's auxiliary head also attached.  Prefer ``distance="cosine"`` for
short schedules.
Scores are clamped below at the smallest positive float32, so they lie in (0, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..exceptions import InvalidParameterError
from ..model import ForwardOutput, ModelExtension

__all__ = ["PrototypeHead"]


class PrototypeHead(ModelExtension):
    """N prototypes per class with a learnable per-class radius; BCE on one-hot targets.

    Parameters
    ----------
    prototypes : int
        Prototypes per class (paper default 1; 2 is its best on CIFAR-100).
    distance : {"euclidean", "cosine"}
        Euclidean-Gaussian or cosine-sigmoid class scores.
    radius : float, optional
        Initial radius ``R_c`` of every class (default 1 for Euclidean, 10 for cosine).
    learn_radius : bool, default True
        False keeps every ``R_c`` at its initial value (a parameter with
        ``requires_grad=False``, so checkpoints keep the same keys): the paper's
        "Rejection-"/"Confusion-" ablation rows, which fix ``R = 0.5`` (pass
        ``radius=0.5`` for those; our initial value stays 1 / 10 by default).
    max_grad_norm : float or None, default 5.0
        Global gradient-norm clip applied to every training step while the head
        is attached (:attr:`ModelExtension.max_grad_norm`); ``None`` trains
        unclipped, as the paper does.  Our default, because the paper is silent
        and the unclipped Euclidean head is unstable with SGD lr 0.1: on repeated
        MNIST (MLP, DACS auxiliary head, seed 2) unclipped training collapsed to
        chance (10.7% at 1,000 labels; radii and features blow up in the first
        epochs), clipped at 5 it reached 89.7%; seed 0 went from 86.8% to 89.8%.
    """

    name = "prototype_head"
    provides = ("prototype_scores",)
    replaces_head = True
    probs_sum_to_one = False

    def __init__(
        self,
        *,
        prototypes: int = 1,
        distance: str = "euclidean",
        radius: float | None = None,
        learn_radius: bool = True,
        max_grad_norm: float | None = 5.0,
    ) -> None:
        super().__init__()
        if not isinstance(learn_radius, bool):
            raise InvalidParameterError(f"learn_radius must be True or False, got {learn_radius!r}")
        if not isinstance(prototypes, int) or isinstance(prototypes, bool) or prototypes < 1:
            raise InvalidParameterError(f"prototypes must be a positive int, got {prototypes!r}")
        if distance not in ("euclidean", "cosine"):
            raise InvalidParameterError(f"distance must be 'euclidean' or 'cosine', got {distance!r}")
        if radius is not None and not (isinstance(radius, (int, float)) and not isinstance(radius, bool) and radius > 0):
            raise InvalidParameterError(f"radius must be a positive number or None (default), got {radius!r}")
        if max_grad_norm is not None and not (
            isinstance(max_grad_norm, (int, float)) and not isinstance(max_grad_norm, bool) and max_grad_norm > 0
        ):
            raise InvalidParameterError(f"max_grad_norm must be a positive number or None, got {max_grad_norm!r}")
        self.max_grad_norm = None if max_grad_norm is None else float(max_grad_norm)
        self.radius0 = radius
        self.learn_radius = learn_radius
        self.n_prototypes = prototypes
        self.distance = distance
        self.num_classes = 0
        self.prototypes = nn.Parameter(torch.zeros(0))
        self.radius = nn.Parameter(torch.zeros(0))

    def build(self, embedding_dim: int, stage_shapes: list[tuple[int, ...]], num_classes: int) -> None:
        """Prototypes ``(C, N, d)`` and one radius per class (frozen unless ``learn_radius``)."""
        self.num_classes = int(num_classes)
        d = int(embedding_dim)
        self.prototypes = nn.Parameter(torch.randn(self.num_classes, self.n_prototypes, d) / math.sqrt(d))
        r0 = self.radius0 if self.radius0 is not None else (1.0 if self.distance == "euclidean" else 10.0)
        self.radius = nn.Parameter(torch.full((self.num_classes,), float(r0)), requires_grad=self.learn_radius)

    def log_scores(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log p, logit)`` per class, shape ``(B, C)`` each.

        Euclidean: ``log p = -min_n ||f - m_cn||^2 / (2 R_c^2)``; cosine:
        ``logit = R_c * max_n cos(f, m_cn)`` and ``log p = logsigmoid(logit)``
        (for the Euclidean head ``logit`` is ``log p - log(1 - p)``).
        """
        if self.prototypes.ndim != 3:
            raise InvalidParameterError("the prototype head is not built yet; attach it to an ALModel first")
        f = features.float().flatten(1)
        protos = self.prototypes.reshape(-1, self.prototypes.shape[-1])
        radius = self.radius.abs().clamp_min(1e-3)
        if self.distance == "euclidean":
            d2 = (f.pow(2).sum(1, keepdim=True) - 2 * f @ protos.T + protos.pow(2).sum(1)[None]).clamp_min(0)
            d2 = d2.view(f.shape[0], self.num_classes, self.n_prototypes).min(dim=2).values
            logp = -d2 / (2 * radius.pow(2))
            logit = logp - _log1mexp(logp)
            return logp, logit
        cos = F.normalize(f, dim=1) @ F.normalize(protos, dim=1).T
        cos = cos.view(f.shape[0], self.num_classes, self.n_prototypes).max(dim=2).values
        logit = cos * radius
        return F.logsigmoid(logit), logit

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """Per-class scores ``p_c`` in (0, 1], shape ``(B, C)``."""
        logp, _ = self.log_scores(features)
        return logp.exp().clamp_min(torch.finfo(torch.float32).tiny)

    def head_sample_loss(self, out: ForwardOutput, targets: torch.Tensor) -> torch.Tensor:
        """Per-sample loss of this head, shape ``(B,)``: the BCE against one-hot targets, averaged over classes.

        Its batch mean is :meth:`head_loss`.  A loss-prediction module attached
        with this head (``ncenet+learning_loss``, the NCE-Net paper's "NCE +
        LL4AL") learns to rank these values.
        """
        _, logit = self.log_scores(out.embeddings)
        onehot = F.one_hot(targets.long(), self.num_classes).to(logit.dtype)
        return F.binary_cross_entropy_with_logits(logit, onehot, reduction="none").mean(dim=1)

    def head_loss(self, out: ForwardOutput, targets: torch.Tensor, progress: float) -> torch.Tensor:
        """Binary cross-entropy against one-hot targets, averaged over classes and batch."""
        return self.head_sample_loss(out, targets).mean()

    def head_probs(self, out: ForwardOutput) -> torch.Tensor:
        return self.scores(out.embeddings)

    def infer(self, out: ForwardOutput) -> dict[str, torch.Tensor]:
        return {"prototype_scores": self.scores(out.embeddings)}


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(x))`` for ``x <= 0``, stable at both ends (Maechler 2012)."""
    x = x.clamp_max(-1e-12)
    near = x > -math.log(2)
    # each branch sees only inputs where it is finite (torch.where would otherwise leak NaN gradients)
    a = torch.log(-torch.expm1(torch.where(near, x, torch.full_like(x, -1.0))))
    b = torch.log1p(-torch.exp(torch.where(near, torch.full_like(x, -1.0), x)))
    return torch.where(near, a, b)
