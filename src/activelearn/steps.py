"""One training step's whole loss as a module, and its data-parallel wrapper.

:class:`StepLoss` computes everything a step optimises (the model's forward,
the main or head-replacement loss, every extension's
:meth:`~activelearn.model.ModelExtension.step_loss`) inside one ``forward``;
:class:`ParallelStep` runs it directly in one process and under
:class:`torch.nn.parallel.DistributedDataParallel` (DDP) in a
``torch.distributed`` run, so that every parameter use of a step happens
inside DDP's forward and DDP's own reducer averages the gradients.
:func:`rank_slice` is the per-batch sharding of the labeled set.  See
``docs/distributed.md``, "Training".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import distributed as D
from .exceptions import InvalidParameterError
from .model import ALModel, StepContext

__all__ = ["StepBatch", "StepLoss", "ParallelStep", "main_loss", "resolve_loss", "rank_slice", "sit_out_batch", "trained_by_some_rank", "trains_itself", "zero_loss"]


@dataclass
class StepBatch:
    """The inputs of one training step (tensors already on the model's device).

    Attributes
    ----------
    x, y : torch.Tensor
        This rank's labeled inputs (after the training transform) and targets.
    indices : numpy.ndarray
        Their pool indices.
    progress : float
        ``epoch / epochs``.
    step, epoch : int
        Steps taken so far in this ``fit`` and the current epoch.
    unlabeled_indices, unlabeled_inputs : optional
        A seeded unlabeled batch for extensions with ``uses_unlabeled``.
    """

    x: torch.Tensor
    y: torch.Tensor
    indices: np.ndarray
    progress: float
    step: int
    epoch: int
    unlabeled_indices: np.ndarray | None = None
    unlabeled_inputs: torch.Tensor | None = None


def resolve_loss(loss: str, task: str) -> str:
    """The main loss of a task: ``"auto"`` becomes cross-entropy for classification, MSE for regression.

    Cross-entropy on a regression task is refused: with targets in [0, 1) it is
    exactly 0 (the targets truncate to class 0 of a one-output head) and nothing learns.
    """
    if loss == "auto":
        return "cross_entropy" if task == "classification" else "mse"
    if loss == "cross_entropy" and task == "regression":
        raise InvalidParameterError("loss='cross_entropy' needs class targets but the task is regression; use loss='mse' or 'auto'")
    return loss


def main_loss(kind: str, logits: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy (``kind="cross_entropy"``) or mean squared error of one batch, in float32.

    ``label_smoothing`` (cross-entropy only; MSE ignores it) is
    ``(1 - eps) * CE + eps * mean_k(-log p_k)``, PyTorch's definition, over
    all outputs (with ``open_set`` the K+1 classes).
    """
    if kind == "cross_entropy":
        return F.cross_entropy(logits.float(), y.long(), label_smoothing=label_smoothing)
    target = y.float().view(logits.shape[0], -1)
    return F.mse_loss(logits.float().view_as(target), target)


class StepLoss(torch.nn.Module):
    """The whole loss of one training step: model forward, main (or head) loss, extension losses.

    Parameters
    ----------
    model : ALModel
        The model to train.  This module registers the backbone and every
        extension that does not train itself (``trains_itself``, see
        :func:`trains_itself`), so those are the parameters DDP averages when
        this module is wrapped; the model itself is held unregistered.
    loss : {"cross_entropy", "mse"}
        The main loss (``TrainConfig.loss``); a head replacement's
        ``head_loss`` takes its place.
    label_smoothing : float, default 0.0
        ``TrainConfig.label_smoothing`` for the main cross-entropy.
    """

    def __init__(self, model: ALModel, loss: str, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self._model = (model,)  # a tuple: not registered, so self-training extensions stay outside DDP
        self.parts = torch.nn.ModuleList([model.backbone, *(e for e in model.extensions.values() if not trains_itself(e))])
        self.loss = loss
        self.label_smoothing = label_smoothing

    @property
    def model(self) -> ALModel:
        """The model this step trains."""
        return self._model[0]

    def forward(self, batch: StepBatch) -> torch.Tensor:
        """The step's loss (a scalar with its graph), in the order the trainer always used."""
        model = self.model
        out = model(batch.x)
        _check_open_set(model, out.logits.shape[1])
        head = model.head_extension
        loss = head.head_loss(out, batch.y, batch.progress) if head is not None else main_loss(self.loss, out.logits, batch.y, self.label_smoothing)
        ctx = StepContext(out, batch.y, batch.progress, batch.x, model, batch.indices, step=batch.step, epoch=batch.epoch)
        ctx.unlabeled_indices, ctx.unlabeled_inputs = batch.unlabeled_indices, batch.unlabeled_inputs
        for ext in model.extensions.values():
            extra = ext.step_loss(ctx)  # type: ignore[operator]
            if extra is not None:
                loss = loss + extra
        return loss


def trains_itself(extension: Any) -> bool:
    """True for an extension that updates its own parameters inside ``step_loss`` (``trains_itself = True``, e.g. VAAL).

    Such an extension runs its own backward passes and optimiser steps during
    the step's forward and returns no loss for its parameters.  DDP must not
    manage those parameters (their gradient hooks would fire inside DDP's
    forward, and DDP then fails on gradients the extension cleared), so they
    train on each rank's slice and :meth:`ParallelStep.close` copies rank 0's
    to every rank at the end of ``fit``.
    """
    return bool(getattr(extension, "trains_itself", False))


def _check_open_set(model: ALModel, outputs: int) -> None:
    if model.open_set and outputs != model.num_classes + 1:
        raise InvalidParameterError(
            f"open_set=True needs a backbone with num_classes + 1 = {model.num_classes + 1} outputs "
            f"(the last is 'not in task'), got {outputs}; build it with num_classes={model.num_classes + 1}"
        )


class ParallelStep:
    """:class:`StepLoss` run directly (one process) or under ``DistributedDataParallel``.

    Built once per ``Trainer.fit``, after the extensions are built (DDP
    registers the parameters that exist when it wraps the module, and checks
    that every rank has the same ones).  Wrapping broadcasts rank 0's
    parameters and buffers.

    Choices:

    * ``find_unused_parameters=True``, not ``static_graph``: the set of
      parameters a step uses is not fixed in general (a head replacement
      leaves the backbone's head without gradient, an extension may detach
      its inputs part-way, e.g. learning loss at 60% of the epochs, and an
      extension that steps its own optimisers inside ``step_loss``, e.g.
      VAAL, keeps its parameters out of the step's graph), and extensions are
      user code.  The price is one traversal of the autograd graph per step.
    * Buffers (batch-norm statistics) are broadcast from rank 0 before every
      forward, DDP's default; :meth:`close` broadcasts the whole module once
      more, so all replicas end ``fit`` identical.
    * DDP averages gradients over ranks: callers scale each rank's loss by
      ``world_size`` times its share of the global batch (:func:`rank_slice`),
      so the average is the gradient of the global batch's mean loss.

    Parameters
    ----------
    model : ALModel
    loss : str
        ``TrainConfig.loss``.
    label_smoothing : float, default 0.0
        ``TrainConfig.label_smoothing``.
    """

    def __init__(self, model: ALModel, loss: str, label_smoothing: float = 0.0) -> None:
        self.module = StepLoss(model, loss, label_smoothing)
        self.world = D.world_size()
        self.ddp: torch.nn.parallel.DistributedDataParallel | None = None
        if D.is_distributed():
            dev = model.device
            self.ddp = torch.nn.parallel.DistributedDataParallel(
                self.module,
                device_ids=[dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else None,
                find_unused_parameters=True,
            )

    def __call__(self, batch: StepBatch) -> torch.Tensor:
        """The step loss; under DDP its backward also averages the gradients over ranks."""
        return self.ddp(batch) if self.ddp is not None else self.module(batch)

    def close(self, *, sync: bool = True) -> None:
        """Drop the DDP wrapper (its reducer removes its hooks); with ``sync`` make every replica rank 0's copy.

        ``sync=False`` on an error path, where another rank may never reach the broadcast.
        """
        if self.ddp is not None:
            self.ddp = None
            if sync:
                D.broadcast_module(self.module.model)


def rank_slice(n: int, has_batchnorm: bool) -> tuple[int, int, float]:
    """This rank's contiguous slice ``[a, b)`` of a global batch of ``n`` samples, and its loss weight.

    The weight is the slice's share of the trained samples, so that the
    weighted sum of the ranks' gradients is the gradient of the whole batch's
    mean loss.  With batch-norm a slice of one sample cannot train; it gets
    weight 0 (the rank sits the step out) and the others' shares are
    renormalised.  An empty slice (``n < world``) also gets weight 0.
    """
    sizes = D.shard_sizes(n)
    usable = sum(s for s in sizes if not (has_batchnorm and s == 1))
    a, b = D.shard_range(n)
    if b == a or (has_batchnorm and b - a == 1):
        return a, a, 0.0
    return a, b, (b - a) / max(usable, 1)


def trained_by_some_rank(n: int, has_batchnorm: bool) -> bool:
    """False when every rank would sit a global batch of ``n`` out (batch-norm slices of at most one sample).

    The trainer then skips the step on every rank, as one process skips a
    one-sample batch-norm batch, instead of applying an optimizer step to a
    zero gradient (momentum would still move the weights).
    """
    return any(s > 1 or (s == 1 and not has_batchnorm) for s in D.shard_sizes(n))


def sit_out_batch(batch: StepBatch) -> StepBatch:
    """A stand-in for a rank that sits a step out: its first sample, no unlabeled batch."""
    return StepBatch(batch.x[:1], batch.y[:1], batch.indices[:1], batch.progress, batch.step, batch.epoch)


def zero_loss(step: ParallelStep, batch: StepBatch) -> torch.Tensor:
    """The step loss of a stand-in batch times zero, computed in evaluation mode.

    A rank with nothing to train in a step must still run DDP's forward and
    backward (every rank's reducer takes part in the same all-reduces).  The
    stand-in (one sample of the global batch, :func:`sit_out_batch`) uses the
    same parameters as the other ranks' losses, so DDP marks the same ones
    used; times zero it adds nothing to the averaged gradient.  Evaluation
    mode keeps batch-norm statistics and dropout untouched, and a one-sample
    batch-norm forward possible.
    """
    model: Any = step.module.model
    model.eval()
    try:
        return step(batch) * 0.0
    finally:
        model.train()
