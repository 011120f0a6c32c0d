"""The extension point of :class:`~activelearn.model.ALModel`: what a strategy plugs into the model.

:class:`ModelExtension` is the base class of strategy-owned heads and modules
(auxiliary heads, loss prediction, prototype heads, VAAL); :class:`ForwardOutput`
is one forward pass of the model, :class:`BuildContext` and :class:`StepContext`
are what an extension receives when it is built and at each training step.
The hooks are described in :mod:`activelearn.model` and ``docs/extensions.md``;
:mod:`activelearn.model` re-exports every name here.

This module does not import :mod:`activelearn.model` (which imports it), so the
model is typed ``Any`` in the contexts: it is an :class:`~activelearn.model.ALModel`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .exceptions import InvalidParameterError

__all__ = ["ForwardOutput", "BuildContext", "StepContext", "ModelExtension"]


@dataclass
class ForwardOutput:
    """What one forward pass of :class:`ALModel` yields (tensors keep their graph in training).

    Attributes
    ----------
    logits : torch.Tensor
        The backbone's outputs, B x C.
    embeddings : torch.Tensor
        The penultimate features (input of ``head``), B x d.
    stages : list of torch.Tensor
        Raw outputs of the stage modules (conv maps stay B x C x H x W).
    """

    logits: torch.Tensor
    embeddings: torch.Tensor
    stages: list[torch.Tensor] = field(default_factory=list)


@dataclass
class BuildContext:
    """What :meth:`ModelExtension.build_from` receives.

    Attributes
    ----------
    embedding_dim : int
        Size of the penultimate embedding.
    stage_shapes : list of tuple of int
        Per-sample shapes of the stage outputs.
    num_classes : int
        Outputs of the head (``num_classes + 1`` with ``open_set``).
    input_shape : tuple of int
        Shape of one input sample (e.g. ``(784,)`` or ``(3, 32, 32)``).
    model : ALModel
        The model being extended (read it; do not keep it as an attribute of
        the extension, which would register the model inside itself).
    """

    embedding_dim: int
    stage_shapes: list[tuple[int, ...]]
    num_classes: int
    input_shape: tuple[int, ...]
    model: Any


@dataclass
class StepContext:
    """What :meth:`ModelExtension.step_loss` receives at each training step.

    Attributes
    ----------
    out : ForwardOutput
        The model's forward pass on ``inputs`` (with its graph).
    targets : torch.Tensor
        Labels of the batch.
    progress : float
        ``epoch / epochs`` in [0, 1).
    inputs : torch.Tensor
        The labeled batch, as fed to the model (after the training transform).
    model : ALModel
        The model being trained.
    indices : numpy.ndarray
        Pool indices of the labeled batch.
    unlabeled_inputs : torch.Tensor or None
        A batch of unlabeled inputs (same transform) when an attached extension
        sets ``uses_unlabeled = True`` and the unlabeled pool is not empty; the
        trainer walks a seeded permutation of the unlabeled pool (seed from
        ``TrainConfig.seed`` and the cycle), ``batch_size`` samples per step.
    unlabeled_indices : numpy.ndarray or None
        Their pool indices.
    step : int
        Steps taken so far in this call of ``Trainer.fit`` (0 at the first).
    epoch : int
        Current epoch.
    """

    out: ForwardOutput
    targets: torch.Tensor
    progress: float
    inputs: torch.Tensor
    model: Any
    indices: np.ndarray
    unlabeled_inputs: torch.Tensor | None = None
    unlabeled_indices: np.ndarray | None = None
    step: int = 0
    epoch: int = 0


class ModelExtension(nn.Module):
    """Base class of everything a strategy plugs into the model.

    Subclasses set ``name`` (unique per model), ``provides`` (output names served
    to strategies), and override what they need among :meth:`build`,
    :meth:`training_loss`, :meth:`infer`; a head replacement sets
    ``replaces_head = True`` and overrides :meth:`head_loss` and
    :meth:`head_probs`.  Parameters created in :meth:`build` are trained jointly
    with the backbone and saved with it.
    """

    name: str = "extension"
    provides: tuple[str, ...] = ()
    replaces_head: bool = False
    #: True when ``head_probs`` (if any) sum to one over classes.
    probs_sum_to_one: bool = True
    #: Global gradient-norm clip this extension's loss needs to train stably
    #: (None: none).  The trainer applies the smallest requested clip, and
    #: ``TrainConfig.grad_clip`` if set, to every step while it is attached.
    max_grad_norm: float | None = None
    #: True when :meth:`step_loss` needs ``StepContext.unlabeled_inputs``: the
    #: trainer then also draws a seeded unlabeled batch at every step.
    uses_unlabeled: bool = False
    #: True when :meth:`step_loss` updates this extension's parameters with its
    #: own optimisers (e.g. VAAL): data-parallel training then keeps them out of
    #: DistributedDataParallel (see ``docs/distributed.md``).
    trains_itself: bool = False

    def build_from(self, ctx: BuildContext) -> None:
        """Create the parameters from a :class:`BuildContext` (default: calls :meth:`build`)."""
        self.build(ctx.embedding_dim, ctx.stage_shapes, ctx.num_classes)

    def step_loss(self, ctx: StepContext) -> torch.Tensor | None:
        """Extra loss of one training step (default: :meth:`training_loss` on the context's fields).

        An extension that trains its own sub-networks adversarially (e.g. VAAL)
        may instead step its own optimisers here and return None; the trainer
        clears all gradients before the main backward pass, so its parameters
        then get no gradient from the main loss and the main optimiser skips them.
        """
        return self.training_loss(ctx.out, ctx.targets, ctx.progress)

    def infer_with(self, out: ForwardOutput, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named outputs given the forward pass and the batch inputs (default: :meth:`infer`)."""
        return self.infer(out)

    def build(self, embedding_dim: int, stage_shapes: list[tuple[int, ...]], num_classes: int) -> None:
        """Create the parameters once the backbone's feature sizes are known."""

    def training_loss(self, out: ForwardOutput, targets: torch.Tensor, progress: float) -> torch.Tensor | None:
        """Extra loss term added to the main loss (already weighted), or None."""
        return None

    def infer(self, out: ForwardOutput) -> dict[str, torch.Tensor]:
        """Named outputs (first dimension = batch) served to strategies in evaluation mode."""
        return {}

    def head_loss(self, out: ForwardOutput, targets: torch.Tensor, progress: float) -> torch.Tensor:
        """Main loss when this extension replaces the head."""
        raise InvalidParameterError(f"extension {self.name!r} does not replace the head")

    def head_probs(self, out: ForwardOutput) -> torch.Tensor:
        """Class scores in [0, 1] when this extension replaces the head."""
        raise InvalidParameterError(f"extension {self.name!r} does not replace the head")
