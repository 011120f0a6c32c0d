"""Learning Loss (Yoo & Kweon, CVPR 2019): a module that predicts the target loss.

The module taps the backbone's stage features (``ForwardOutput.stages``): one
branch per tapped stage (global average pooling for conv maps, identity for
vectors, then ``Linear(C_stage -> hidden)`` and ReLU); the branches are
concatenated and a last ``Linear(-> 1)`` gives the predicted loss.  A backbone
without stages (``stage_names`` empty) is tapped at its penultimate embedding
instead, as a single branch.

It is trained with the margin ranking loss of the paper on pairs formed by
flipping the mini-batch (sample ``i`` with ``B-1-i``), against the detached
per-sample losses of the main head; after ``detach_at`` of the epochs (paper:
120 of 200 = 0.6) the tapped features are detached, so the module's gradient no
longer reaches the backbone.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from ..exceptions import InvalidParameterError
from ..model import BuildContext, ForwardOutput, ModelExtension, StepContext

__all__ = ["LossPredictionModule", "ranking_loss", "per_sample_loss", "PerSampleHeadLoss"]


@runtime_checkable
class PerSampleHeadLoss(Protocol):
    """A head-replacing extension that can give its own per-sample loss (e.g. NCE-Net's prototype head)."""

    def head_sample_loss(self, out: ForwardOutput, targets: torch.Tensor) -> torch.Tensor:
        """Per-sample main loss, shape ``(B,)``, whose batch mean is the head's ``head_loss``."""
        ...


def ranking_loss(pred: torch.Tensor, target: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Margin ranking loss of Learning Loss on flipped-batch pairs.

    Sample ``i`` is paired with ``B-1-i`` and the first ``B // 2`` pairs are
    kept; with ``s = +1`` if ``target_i > target_j`` else ``-1`` (ties give -1,
    as in the public reproduction), the loss is
    ``mean_pairs max(0, margin - s * (pred_i - pred_j))``.  An odd batch drops
    its last sample first; a batch of fewer than two samples gives 0 (with a
    graph, so ``backward`` still works).

    Parameters
    ----------
    pred : torch.Tensor
        Predicted losses, shape ``(B,)`` or ``(B, 1)``.
    target : torch.Tensor
        True per-sample losses (detached), shape ``(B,)``.
    margin : float
        The ranking margin (paper: 1.0).
    """
    pred = pred.reshape(-1)
    target = target.reshape(-1).detach().to(pred.dtype)
    if pred.shape != target.shape:
        raise InvalidParameterError(f"pred and target must have the same length, got {tuple(pred.shape)} and {tuple(target.shape)}")
    b = pred.shape[0] - pred.shape[0] % 2
    if b < 2:
        return pred.sum() * 0.0
    pred, target = pred[:b], target[:b]
    half = b // 2
    dp = (pred - pred.flip(0))[:half]
    dt = (target - target.flip(0))[:half]
    sign = torch.where(dt > 0, 1.0, -1.0).to(pred.dtype)
    return torch.clamp(margin - sign * dp, min=0).mean()


def per_sample_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Detached per-sample target losses: cross-entropy for class targets, squared error otherwise."""
    logits = logits.float()
    if targets.dtype in (torch.int64, torch.int32, torch.int16, torch.uint8) and logits.ndim == 2 and logits.shape[1] > 1:
        return F.cross_entropy(logits, targets.long(), reduction="none").detach()
    target = targets.float().view(logits.shape[0], -1)
    return ((logits.view_as(target) - target) ** 2).mean(dim=1).detach()


class LossPredictionModule(ModelExtension):
    """The loss-prediction module, trained jointly with the backbone.

    Parameters
    ----------
    hidden : int
        Width of each branch (paper: 128).
    margin : float
        Ranking margin (paper: 1.0).
    weight : float
        Weight of the ranking loss added to the main loss (paper: 1.0).
    detach_at : float
        Fraction of the epochs after which the tapped features are detached
        (paper: 0.6): an epoch is detached when ``epoch / epochs >= detach_at``,
        so with 200 epochs epochs 0-119 train the backbone through the module
        and epochs 120-199 do not; 0.0 always detaches; 1.0 never does.

    Notes
    -----
    The target losses are the per-sample losses of the model's head: the
    cross-entropy of the backbone's logits (squared error for regression
    targets), or, when another extension replaces the head, that head's own
    per-sample loss (:class:`PerSampleHeadLoss`; e.g. NCE-Net's BCE, so
    ``ncenet+learning_loss`` is the NCE-Net paper's "NCE + LL4AL").  A head
    replacement without ``head_sample_loss`` is refused when the module is built.
    """

    name = "loss_prediction"
    provides = ("predicted_loss",)

    def __init__(self, *, hidden: int = 128, margin: float = 1.0, weight: float = 1.0, detach_at: float = 0.6) -> None:
        super().__init__()
        if not isinstance(hidden, int) or isinstance(hidden, bool) or hidden < 1:
            raise InvalidParameterError(f"hidden must be a positive int, got {hidden!r}")
        if not 0.0 <= float(detach_at) <= 1.0:
            raise InvalidParameterError(f"detach_at must lie in [0, 1], got {detach_at!r}")
        self.hidden = hidden
        self.margin = float(margin)
        self.weight = float(weight)
        self.detach_at = float(detach_at)
        self.uses_stages = True
        self.branches = nn.ModuleList()
        self.out: nn.Linear | None = None

    def build_from(self, ctx: BuildContext) -> None:
        """Refuse a head replacement that cannot give per-sample losses, then :meth:`build`."""
        _head_target_source(ctx.model.head_extension)
        super().build_from(ctx)

    def build(self, embedding_dim: int, stage_shapes: list[tuple[int, ...]], num_classes: int) -> None:
        """One ``Linear(C -> hidden)`` per tapped stage (channels for conv maps), then ``Linear(-> 1)``."""
        self.uses_stages = bool(stage_shapes)
        shapes = stage_shapes if stage_shapes else [(embedding_dim,)]
        self.branches = nn.ModuleList(nn.Linear(int(s[0]), self.hidden) for s in shapes)
        self.out = nn.Linear(self.hidden * len(shapes), 1)

    def taps(self, out: ForwardOutput) -> list[torch.Tensor]:
        """The tapped features of one forward pass (stages, or the embedding if there are none)."""
        return list(out.stages) if self.uses_stages else [out.embeddings]

    def forward(self, taps: list[torch.Tensor]) -> torch.Tensor:
        """Predicted loss per sample, shape ``(B,)``."""
        if self.out is None:
            raise InvalidParameterError("the loss-prediction module is not built yet; attach it to an ALModel first")
        if len(taps) != len(self.branches):
            raise InvalidParameterError(f"expected {len(self.branches)} tapped features, got {len(taps)}")
        feats = []
        for t, branch in zip(taps, self.branches):
            t = t.float()
            v = t.mean(dim=tuple(range(2, t.ndim))) if t.ndim > 2 else t.flatten(1)
            feats.append(F.relu(branch(v)))
        return self.out(torch.cat(feats, dim=1)).squeeze(1)

    def step_loss(self, ctx: StepContext) -> torch.Tensor | None:
        """:meth:`training_loss`, or, under a head replacement, the ranking loss on that head's own per-sample loss."""
        head = _head_target_source(ctx.model.head_extension)
        if head is None:
            return self.training_loss(ctx.out, ctx.targets, ctx.progress)
        return self.ranking_term(ctx.out, head.head_sample_loss(ctx.out, ctx.targets), ctx.progress)

    def training_loss(self, out: ForwardOutput, targets: torch.Tensor, progress: float) -> torch.Tensor:
        """``weight * ranking_loss`` against the backbone head's per-sample losses (:func:`per_sample_loss`)."""
        return self.ranking_term(out, per_sample_loss(out.logits, targets), progress)

    def ranking_term(self, out: ForwardOutput, target: torch.Tensor, progress: float) -> torch.Tensor:
        """``weight * ranking_loss(predicted, target)``; taps detached once ``progress >= detach_at``."""
        taps = self.taps(out)
        if progress >= self.detach_at:
            taps = [t.detach() for t in taps]
        return self.weight * ranking_loss(self(taps), target.detach(), self.margin)

    def infer(self, out: ForwardOutput) -> dict[str, torch.Tensor]:
        return {"predicted_loss": self(self.taps(out))}


def _head_target_source(head: ModelExtension | None) -> PerSampleHeadLoss | None:
    """The head replacement whose per-sample loss is the target (None: the backbone's own head)."""
    if head is None:
        return None
    if not isinstance(head, PerSampleHeadLoss):
        raise InvalidParameterError(
            f"the loss-prediction module needs the per-sample loss of the model's head, but head replacement "
            f"{head.name!r} ({type(head).__name__}) has no head_sample_loss(out, targets); add that method "
            "(per-sample loss whose mean is head_loss) or drop one of the two extensions"
        )
    return head
