"""DACS's auxiliary head: a low-dimensional normalised embedding trained with a cosine classifier.

Kim & Shin (KDD 2022) add to any backbone a linear map from the penultimate
feature ``z`` to ``d_n = 16`` dimensions, L2-normalise it, and train a cosine
classifier on it jointly with the main head (loss weight ``lambda``).  The
backbone feature fed to this head is detached after 60% of the epochs (epoch
120 of 200 in the paper), so that late in training the head adapts to the
backbone without pulling it.  DACS measures density and runs k-center on these
unit vectors; the paper trains every baseline with the same head attached.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from ..exceptions import InvalidParameterError
from ..model import ForwardOutput, ModelExtension

__all__ = ["AuxiliaryHead"]


class AuxiliaryHead(ModelExtension):
    """Linear(d -> dim), L2 normalisation, scaled cosine classifier; serves ``"aux_embedding"``.

    Parameters
    ----------
    dim : int, default 16
        Size of the auxiliary embedding (the paper's ``d_n``).
    weight : float, default 1.0
        Loss weight ``lambda``: total loss = main loss + ``weight`` * auxiliary
        cross-entropy.
    scale : float, default 10.0
        Scale ``s`` of the cosine classifier, ``logits = s * cos(u, w_c)``.
        Cosines lie in ``[-1, 1]``, so without a scale the softmax can never be
        confident (with 10 classes the best attainable probability would be
        about 0.23) and the loss keeps pushing all vectors apart instead of
        clustering them by class.  10 lets the top class reach probability
        ``> 0.99`` while keeping gradients alive, the usual choice for cosine
        classifiers (normalised-softmax / CosFace-style heads use 10-30).  The
        paper does not give its value.
    learnable_scale : bool, default False
        Learn ``s`` (initialised at ``scale``, kept positive via its log).
    detach_after : float, default 0.6
        Fraction of the epochs after which the backbone feature is detached
        before this head (paper: epoch 120 of 200).  1.0 never detaches, 0.0
        always detaches (the head then never shapes the backbone).

    Notes
    -----
    Outputs served to strategies: ``"aux_embedding"``, the unit-norm
    ``dim``-vectors (B x dim).  The paper's Eq. 3 writes a squared norm; we
    divide by the norm so that the dot product of two vectors is their cosine
    (which Eq. 8 relies on).  Works with any backbone: the input size is the
    model's embedding size, known at :meth:`build` time.

    Examples
    --------
    >>> from activelearn.experiment import make_loop          # doctest: +SKIP
    >>> loop = make_loop("digits", "entropy", extensions=[AuxiliaryHead()])  # doctest: +SKIP
    """

    name = "auxiliary"
    provides = ("aux_embedding",)

    def __init__(
        self,
        *,
        dim: int = 16,
        weight: float = 1.0,
        scale: float = 10.0,
        learnable_scale: bool = False,
        detach_after: float = 0.6,
    ) -> None:
        super().__init__()
        if not isinstance(dim, numbers.Integral) or isinstance(dim, bool) or dim < 1:
            raise InvalidParameterError(f"dim must be a positive int, got {dim!r}")
        for pname, value in (("weight", weight), ("scale", scale)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise InvalidParameterError(f"{pname} must be a finite number, got {value!r}")
        if weight < 0:
            raise InvalidParameterError(f"weight must be >= 0, got {weight!r}")
        if scale <= 0:
            raise InvalidParameterError(f"scale must be > 0, got {scale!r}")
        if isinstance(detach_after, bool) or not isinstance(detach_after, numbers.Real) or not 0 <= detach_after <= 1:
            raise InvalidParameterError(f"detach_after must be a number in [0, 1], got {detach_after!r}")
        self.dim: int = int(dim)
        self.weight: float = float(weight)
        self.scale: float = float(scale)
        self.learnable_scale: bool = bool(learnable_scale)
        self.detach_after: float = float(detach_after)
        self.proj: nn.Linear | None = None
        self.classes: nn.Parameter | None = None

    def build(self, embedding_dim: int, stage_shapes: list[tuple[int, ...]], num_classes: int) -> None:
        self.proj = nn.Linear(int(embedding_dim), self.dim)
        w = torch.empty(int(num_classes), self.dim)
        nn.init.normal_(w)
        self.classes = nn.Parameter(w)
        log_s = torch.tensor(math.log(self.scale))
        if self.learnable_scale:
            self.log_scale = nn.Parameter(log_s)
        else:
            self.register_buffer("log_scale", log_s)  # saved with the model, not trained

    def _check_built(self) -> None:
        if self.proj is None:
            raise InvalidParameterError(
                "AuxiliaryHead is not built; attach it to an ALModel (model.attach) and let the model build it"
            )

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """Unit-norm auxiliary vectors of backbone features (B x d -> B x dim)."""
        self._check_built()
        return F.normalize(self.proj(features.float()), dim=1)  # type: ignore[misc]

    def logits(self, u: torch.Tensor) -> torch.Tensor:
        """Scaled cosine logits of unit vectors ``u`` (B x C)."""
        w = F.normalize(self.classes, dim=1)  # type: ignore[arg-type]
        return self.log_scale.exp() * (u @ w.T)

    def training_loss(self, out: ForwardOutput, targets: torch.Tensor, progress: float) -> torch.Tensor | None:
        if self.weight == 0:
            return None
        if targets.is_floating_point():
            raise InvalidParameterError(
                "AuxiliaryHead trains a cosine classifier and needs class targets; "
                f"got {targets.dtype} targets (a regression task). Set weight=0 to keep an untrained projection"
            )
        feats = out.embeddings.detach() if progress >= self.detach_after else out.embeddings
        return self.weight * F.cross_entropy(self.logits(self.embed(feats)), targets)

    def infer(self, out: ForwardOutput) -> dict[str, torch.Tensor]:
        return {"aux_embedding": self.embed(out.embeddings)}

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, weight={self.weight}, scale={self.scale}, "
            f"learnable_scale={self.learnable_scale}, detach_after={self.detach_after}"
        )
