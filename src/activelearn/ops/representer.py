"""Representer values of an L2-regularised last linear layer (Yeh et al. 2018) and IBAL.

Setting: a linear layer ``phi = Theta f`` (``f`` the penultimate features with a
1 appended for the bias, ``Theta`` a ``C x (d+1)`` matrix) trained to a
stationary point of ``(1/n) sum_i L(phi_i, y_i) + lambda ||Theta||^2``.  At the
optimum ``Theta* = sum_i alpha_i f_i^T`` with
``alpha_i = -1/(2 lambda n) dL/dphi_i``, so every pre-softmax output splits into
per-training-point contributions ``Theta* f_t = sum_i alpha_i (f_i . f_t)``:
the representer value of training point ``i`` on target ``t`` for class ``c``
is ``alpha_{i,c} f_i . f_t``.

IBAL (Pezeshkpour, Zhao & Singh) scores an unlabeled ``x_i`` by its expected
influence on the labeled set.  For cross-entropy, the representer weight of
``x_i`` under a hypothetical label ``y`` has component
``alpha_{i,y} = (1 - p_y(x_i)) / (2 lambda n)`` on class ``y``.  Taking the
expectation over ``y ~ p(x_i)`` of the *whole* vector ``alpha_i`` would give
``sum_y p_y (onehot_y - p) = 0`` exactly, so we follow the per-class scalar
reading (see METHODS.md):

``IBAL(x_i) = sum_{t in L} sum_y p_y alpha_{i,y} f_i . f_t
= [sum_y p_y (1 - p_y)] f_i . (sum_{t in L} f_t) / (2 lambda n)``,

one dot product per sample with the summed labeled features: ``O(|U| d)``
instead of ``O(|U| |L| d)``.
"""

from __future__ import annotations

import torch

from ..exceptions import InvalidInputError, InvalidParameterError

__all__ = [
    "with_bias",
    "cross_entropy_logit_grad",
    "representer_alpha",
    "representer_values",
    "ibal_scores",
]


def with_bias(features: torch.Tensor) -> torch.Tensor:
    """Append a column of ones (the bias input) to ``N x d`` features."""
    if features.ndim != 2:
        raise InvalidInputError(f"features must be N x d, got shape {tuple(features.shape)}")
    return torch.cat([features, features.new_ones(features.shape[0], 1)], dim=1)


def _check_lam(lam: float) -> float:
    if not lam > 0:
        raise InvalidParameterError(f"the L2 regulariser lam must be > 0, got {lam!r}")
    return float(lam)


def cross_entropy_logit_grad(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``dL/dphi`` of softmax cross-entropy per sample: ``softmax(phi) - onehot(y)``."""
    if logits.ndim != 2 or targets.shape != logits.shape[:1]:
        raise InvalidInputError(f"need N x C logits and N targets, got {tuple(logits.shape)} and {tuple(targets.shape)}")
    p = torch.softmax(logits, dim=1)
    return p - torch.nn.functional.one_hot(targets.long(), logits.shape[1]).to(p.dtype)


def representer_alpha(loss_grad: torch.Tensor, lam: float, n: int | None = None) -> torch.Tensor:
    """``alpha_i = -1/(2 lambda n) dL/dphi_i`` from the per-sample loss gradients (``n x C``).

    ``n`` is the number of training points in the averaged loss (default the rows of ``loss_grad``).
    """
    lam = _check_lam(lam)
    n = loss_grad.shape[0] if n is None else int(n)
    return -loss_grad / (2.0 * lam * n)


def representer_values(
    alpha: torch.Tensor,
    train_features: torch.Tensor,
    target_features: torch.Tensor,
    cls: int | None = None,
) -> torch.Tensor:
    """Representer values ``alpha_{i,c} f_i . f_t``.

    Parameters
    ----------
    alpha : torch.Tensor
        ``n x C`` representer weights of the training points.
    train_features, target_features : torch.Tensor
        ``n x D`` and ``m x D`` last-layer inputs (bias column included, see :func:`with_bias`).
    cls : int, optional
        Return only class ``cls``.

    Returns
    -------
    torch.Tensor
        ``m x n x C`` (or ``m x n`` for one class): the value of training point
        ``i`` on target ``t``; summed over ``i`` it gives the layer's output
        ``Theta* f_t`` at the regularised optimum.
    """
    if train_features.shape[0] != alpha.shape[0]:
        raise InvalidInputError(f"alpha has {alpha.shape[0]} rows but train_features {train_features.shape[0]}")
    sim = target_features @ train_features.T  # m x n
    if cls is not None:
        return sim * alpha[:, cls][None, :]
    return sim[:, :, None] * alpha[None, :, :]


def ibal_scores(
    probs: torch.Tensor,
    features: torch.Tensor,
    labeled_features: torch.Tensor,
    lam: float,
    n: int | None = None,
) -> torch.Tensor:
    """IBAL of every row, in closed form (``O(N d)``).

    Parameters
    ----------
    probs : torch.Tensor
        ``N x C`` predicted class probabilities of the scored samples.
    features : torch.Tensor
        ``N x D`` last-layer inputs of the scored samples (bias column included).
    labeled_features : torch.Tensor
        ``|L| x D`` last-layer inputs of the labeled (target) set.
    lam : float
        L2 regulariser of the last layer.
    n : int, optional
        Training-set size in ``alpha``'s normaliser (default ``|L|``).

    Returns
    -------
    torch.Tensor
        ``[sum_y p_y (1 - p_y)] f_i . (sum_t f_t) / (2 lambda n)`` per row.
    """
    lam = _check_lam(lam)
    if probs.shape[0] != features.shape[0] or features.shape[1] != labeled_features.shape[1]:
        raise InvalidInputError(
            f"shapes do not line up: probs {tuple(probs.shape)}, features {tuple(features.shape)}, "
            f"labeled_features {tuple(labeled_features.shape)}"
        )
    n = labeled_features.shape[0] if n is None else int(n)
    spread = (probs * (1.0 - probs)).sum(dim=1)
    summed = labeled_features.sum(dim=0)
    return spread * (features @ summed) / (2.0 * lam * max(n, 1))
