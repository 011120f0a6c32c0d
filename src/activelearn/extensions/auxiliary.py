"""DACS's auxiliary head: a low-dimensional normalised embedding trained with a cosine classifier.

Kim & Shin (KDD 2022) add to any backbone a linear map from the penultimate
feature ``z`` to ``d_n = 16`` dimensions, L2-normalise it, and train a cosine
classifier on it jointly with the main head (loss weight ``lambda``).  The
backbone feature fed to this head is detached after 60% of the epochs (epoch
120 of 200 in the paper), so that late in training the head adapts to the
backbone without pulling it.  DACS measures density and runs k-center on these
unit vectors; the paper trains every baseline with the same head attached.

On a regression task (the paper's Davis drug-target affinity experiment, MSE)
the head is a regression head instead: the same Linear and normalisation, then
``Linear(dim -> d)`` to the task's ``d`` outputs, trained with the task's own
loss (MSE) under the same weight and detach rule.  The paper names the task loss
but not the form of this head; a linear read-out of the unit vector is the
counterpart of the cosine classifier (both are linear in ``u``).
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from ..exceptions import InvalidParameterError
from ..model import BuildContext, ForwardOutput, ModelExtension

__all__ = ["AuxiliaryHead"]


class AuxiliaryHead(ModelExtension):
    """Linear(d -> dim), L2 normalisation, then a scaled cosine classifier (classification)
    or a linear regression read-out (regression); serves ``"aux_embedding"``.

    Parameters
    ----------
    dim : int, default 16
        Size of the auxiliary embedding (the paper's ``d_n``).
    weight : float, default 1.0
        Loss weight ``lambda``: total loss = main loss + ``weight`` * auxiliary
        loss (cross-entropy of the cosine classifier, or MSE of the regression
        read-out).  0 leaves the projection untrained (DACS refuses that).
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
    task : {"classification", "regression"}, optional
        Which head to build; default: the task of the model it is attached to
        (``build`` called directly builds the classifier).

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
        task: str | None = None,
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
        if task not in (None, "classification", "regression"):
            raise InvalidParameterError(f"task must be 'classification', 'regression' or None (the model's task), got {task!r}")
        self.dim: int = int(dim)
        self.weight: float = float(weight)
        self.scale: float = float(scale)
        self.learnable_scale: bool = bool(learnable_scale)
        self.detach_after: float = float(detach_after)
        self.task: str | None = task
        self.proj: nn.Linear | None = None
        self.classes: nn.Parameter | None = None
        self.regressor: nn.Linear | None = None

    def build_from(self, ctx: BuildContext) -> None:
        """Build for the model's task unless ``task`` was given."""
        self.task = self.task or ctx.model.task
        self.build(ctx.embedding_dim, ctx.stage_shapes, ctx.num_classes)

    def build(self, embedding_dim: int, stage_shapes: list[tuple[int, ...]], num_classes: int) -> None:
        """Create the projection and, for ``num_classes`` classes or outputs, the classifier or regression read-out."""
        self.proj = nn.Linear(int(embedding_dim), self.dim)
        if self.task == "regression":
            self.regressor = nn.Linear(self.dim, int(num_classes))
            return
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
        feats = out.embeddings.detach() if progress >= self.detach_after else out.embeddings
        u = self.embed(feats)
        if self.regressor is not None:  # regression: the task's own loss on a linear read-out of u
            target = targets.float().view(u.shape[0], -1)
            return self.weight * F.mse_loss(self.regressor(u).view_as(target), target)
        if targets.is_floating_point():
            raise InvalidParameterError(
                "AuxiliaryHead was built as a cosine classifier and needs class targets; "
                f"got {targets.dtype} targets. For a regression task build it with task='regression' "
                "(the default when the model's task is regression)"
            )
        return self.weight * F.cross_entropy(self.logits(u), targets)

    def infer(self, out: ForwardOutput) -> dict[str, torch.Tensor]:
        return {"aux_embedding": self.embed(out.embeddings)}

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, weight={self.weight}, scale={self.scale}, "
            f"learnable_scale={self.learnable_scale}, detach_after={self.detach_after}, task={self.task}"
        )
