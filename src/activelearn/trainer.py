"""Training and evaluation of an :class:`~activelearn.model.ALModel` on the labeled pool.

Configurations are data: a :class:`TrainConfig` holds everything that defines a
schedule, and the papers' setups are instances of it (see
:mod:`activelearn.configs`).
"""

from __future__ import annotations

import contextlib
import inspect
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F

from . import distributed as D
from ._validation import check_positive_int
from .exceptions import InvalidInputError, InvalidParameterError
from .model import ALModel
from .pools import Pools

__all__ = ["TrainConfig", "Trainer", "evaluate"]


@dataclass
class TrainConfig:
    """One training schedule.  Every field has a comment; all are plain data."""

    epochs: int = 50  # passes over the labeled set per cycle
    batch_size: int = 64  # training mini-batch size
    optimizer: Literal["sgd", "adam", "adamw"] = "adam"  # optimiser family
    lr: float = 1e-3  # initial learning rate
    momentum: float = 0.9  # SGD momentum (ignored by Adam)
    weight_decay: float = 0.0  # L2 penalty / decoupled decay for AdamW
    milestones: tuple[int, ...] = ()  # epochs at which the LR is multiplied by gamma
    gamma: float = 0.1  # LR decay factor at each milestone
    loss: Literal["cross_entropy", "mse"] = "cross_entropy"  # main loss (mse for regression)
    from_scratch: bool = True  # re-initialise the model before each cycle (else continue training)
    amp: bool = True  # mixed precision on CUDA (ignored on CPU)
    drop_last: bool = False  # drop a last incomplete batch
    grad_clip: float | None = None  # clip each step's global gradient norm (None: no clip; extensions may ask, see ModelExtension.max_grad_norm)
    seed: int = 0  # seeds shuffling, augmentation and dropout (forked RNG; global state untouched)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes kept with results

    def __post_init__(self) -> None:
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        if self.optimizer not in ("sgd", "adam", "adamw"):
            raise InvalidParameterError(f"optimizer must be 'sgd', 'adam' or 'adamw', got {self.optimizer!r}")
        if self.loss not in ("cross_entropy", "mse"):
            raise InvalidParameterError(f"loss must be 'cross_entropy' or 'mse', got {self.loss!r}")
        if not (self.lr > 0):
            raise InvalidParameterError(f"lr must be > 0, got {self.lr!r}")
        if self.grad_clip is not None and (isinstance(self.grad_clip, bool) or not self.grad_clip > 0):
            raise InvalidParameterError(f"grad_clip must be a positive number or None, got {self.grad_clip!r}")
        self.milestones = tuple(int(m) for m in self.milestones)

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with some fields changed (unknown names raise)."""
        known = {f.name for f in fields(self)}
        bad = sorted(set(changes) - known)
        if bad:
            raise InvalidParameterError(f"unknown TrainConfig field(s) {bad}; known: {sorted(known)}")
        data = asdict(self)
        data.update(changes)
        return TrainConfig(**data)


def _main_loss(config: TrainConfig, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if config.loss == "cross_entropy":
        return F.cross_entropy(logits.float(), y.long())
    target = y.float().view(logits.shape[0], -1)
    return F.mse_loss(logits.float().view_as(target), target)


class Trainer:
    """Fits a model on the labeled samples of a pool with one :class:`TrainConfig`.

    Parameters
    ----------
    config : TrainConfig
    transform : callable, optional
        Per-sample augmentation applied to each training input (not at evaluation).
    progress : bool
        Show a progress bar over epochs.

    Notes
    -----
    In a ``torch.distributed`` run (:mod:`activelearn.distributed`) every rank
    draws the same shuffled order (same seed) and trains on its contiguous
    slice of each mini-batch (the labeled set is thus sharded like
    ``DistributedSampler`` would, but per batch, so ``batch_size`` stays the
    global batch size).  The step runs under
    :class:`torch.nn.parallel.DistributedDataParallel`, built once per ``fit``
    around a private module whose ``forward`` computes the whole loss of the
    step (model forward, main or head loss, every extension's
    ``training_loss``), so that every parameter use happens inside DDP's
    forward; ``find_unused_parameters=True`` lets a head replacement leave the
    backbone's head without gradient.  DDP averages the gradients over ranks,
    so each rank's loss is scaled by ``world_size`` times its slice's share of
    the batch, giving the gradient of the whole batch's mean loss.  On a step
    where some rank's slice is empty (known on every rank from the batch size)
    no rank enters DDP: the ranks with samples compute the loss directly and
    every rank sums the share-weighted gradients with
    :func:`activelearn.distributed.all_reduce_gradients`.  Gradient clipping
    happens after the gradients are synchronised, on every rank.  Weights and
    buffers are broadcast from rank 0 at the start of ``fit``; batch-norm
    statistics are per rank afterwards (no buffer sync, no SyncBatchNorm).  In
    a single process none of this is used.  See ``docs/distributed.md``.
    """

    def __init__(
        self,
        config: TrainConfig | None = None,
        *,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        progress: bool = False,
    ) -> None:
        self.config = config or TrainConfig()
        self.transform = transform
        self.progress = progress
        self.optimizer: torch.optim.Optimizer | None = None

    def _make_optimizer(self, model: ALModel) -> torch.optim.Optimizer:
        c = self.config
        params = [p for p in model.parameters() if p.requires_grad]
        if c.optimizer == "sgd":
            return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
        if c.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay)
        return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)

    def fit(self, model: ALModel, pools: Pools, *, cycle: int = 0) -> dict[str, float]:
        """Train on ``pools.labeled`` with the labels the oracle gave.

        With ``model.open_set`` the rejected samples (``pools.rejected``) are
        trained too, as class ``model.num_classes`` (the auxiliary class K+1).

        Returns a summary (final training loss, seconds).
        """
        c = self.config
        idx = pools.labeled
        if idx.size == 0:
            raise InvalidInputError("no labeled samples to train on; query an initial set first")
        y_all = torch.as_tensor(pools.labels_of(idx))
        if getattr(model, "open_set", False):
            # the "not in task" device: rejected samples are trained as the extra class K+1
            rej = pools.rejected
            idx = np.concatenate([idx, rej])
            y_all = torch.cat([y_all, torch.full((rej.size,), model.num_classes, dtype=y_all.dtype)])
        start = time.perf_counter()
        model.build_extensions(pools.inputs(idx[:2]))
        if c.from_scratch or self.optimizer is None:
            if c.from_scratch:
                model.reset_parameters()
            self.optimizer = self._make_optimizer(model)
        opt = self.optimizer
        for group in opt.param_groups:
            group["lr"] = c.lr
        scheduler = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(c.milestones), gamma=c.gamma)
        use_amp = bool(c.amp and model.device.type == "cuda")
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence([c.seed, cycle]).generate_state(1)[0]))
        n = idx.size
        epochs = range(c.epochs)
        if self.progress:
            from tqdm.auto import tqdm

            epochs = tqdm(epochs, desc=f"train c{cycle}", leave=False)
        last_loss = float("nan")
        head_ext = model.head_extension
        exts = list(model.extensions.values())
        has_batchnorm = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
        sharded = D.is_distributed()
        world = D.world_size()
        ddp = None
        if sharded:  # same starting weights and buffers everywhere (DDP broadcasts them again when it wraps)
            D.broadcast_module(model)
            ddp = _data_parallel(_StepLoss(model, c, head_ext, exts))
        params = [p for g in opt.param_groups for p in g["params"]]
        clip = _grad_clip(c, exts)
        with torch.random.fork_rng(devices=[model.device.index or 0] if model.device.type == "cuda" else []):
            torch.manual_seed(int(gen.initial_seed()) + 1)
            for epoch in epochs:
                model.train()
                progress = epoch / c.epochs
                perm = torch.randperm(n, generator=gen).numpy()
                total, count = 0.0, 0
                for s in range(0, n, c.batch_size):
                    part = perm[s : s + c.batch_size]
                    if c.drop_last and part.size < c.batch_size and n > c.batch_size:
                        break
                    if part.size == 1 and n > 1 and has_batchnorm:
                        continue  # batch-norm cannot train on a single sample
                    weight, synced = 1.0, False
                    if sharded:
                        synced = _every_rank_trains(part.size, has_batchnorm)
                        part, weight = _rank_piece(part, has_batchnorm)
                        if part.size == 0:  # nothing here this step: still take part in the gradient sum
                            opt.zero_grad(set_to_none=True)
                            scaler.scale(torch.zeros((), device=model.device))  # sets up the scale if unused so far
                            D.all_reduce_gradients(params)
                            if clip is not None:  # the same clip as the ranks that trained, so the replicas stay identical
                                scaler.unscale_(opt)
                                torch.nn.utils.clip_grad_norm_(params, clip)
                            scaler.step(opt)
                            scaler.update()
                            continue
                    x = pools.inputs(idx[part])
                    if self.transform is not None:
                        x = torch.stack([self.transform(xi) for xi in x])
                    x = x.to(model.device, non_blocking=True)
                    y = y_all[torch.from_numpy(part)].to(model.device)
                    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else contextlib.nullcontext()
                    with ctx:
                        if synced:
                            loss = ddp(x, y, progress)  # type: ignore[misc]
                        else:  # one process, or a step that some rank sits out (DDP is entered by all ranks or none)
                            loss = _step_loss(model, c, head_ext, exts, x, y, progress)
                    opt.zero_grad(set_to_none=True)
                    if synced:
                        # DDP averages over ranks: scaling by world * share makes the average the share-weighted sum
                        scaler.scale(loss * (weight * world)).backward()
                    else:
                        scaler.scale(loss * weight).backward()
                        if sharded:
                            D.all_reduce_gradients(params)
                    if clip is not None:
                        scaler.unscale_(opt)  # clip the true (synchronised) gradient, not the AMP-scaled one
                        torch.nn.utils.clip_grad_norm_(params, clip)
                    scaler.step(opt)
                    scaler.update()
                    total += float(loss.detach()) * part.size
                    count += part.size
                scheduler.step()
                if sharded:
                    total, count = D.all_reduce_sum([total, count])
                last_loss = total / max(count, 1)
        del ddp  # its reducer removes its gradient hooks from the model's parameters
        model.mark_trained()
        return {"train_loss": last_loss, "train_seconds": time.perf_counter() - start}


def _step_loss(
    model: ALModel, config: TrainConfig, head_ext: Any, exts: list[Any], x: torch.Tensor, y: torch.Tensor, progress: float
) -> torch.Tensor:
    """The whole training loss of one mini-batch: model forward, main (or head) loss, every extension's loss."""
    out = model(x)
    if getattr(model, "open_set", False) and out.logits.shape[1] != model.num_classes + 1:
        raise InvalidParameterError(
            f"open_set=True needs a backbone with num_classes + 1 = {model.num_classes + 1} outputs "
            f"(the last is 'not in task'), got {out.logits.shape[1]}; build it with num_classes={model.num_classes + 1}"
        )
    if head_ext is not None:
        loss = head_ext.head_loss(out, y, progress)
    else:
        loss = _main_loss(config, out.logits, y)
    for ext in exts:
        extra = ext.training_loss(out, y, progress)
        if extra is not None:
            loss = loss + extra
    return loss


class _StepLoss(torch.nn.Module):
    """One training step's loss as a module, so that DDP sees every parameter use inside its ``forward``.

    Wrapping only the model would leave the extension losses (computed from
    the model's outputs and the extensions' own parameters) outside DDP's
    forward, which DDP rejects with ``find_unused_parameters=True``.
    """

    def __init__(self, model: ALModel, config: TrainConfig, head_ext: Any, exts: list[Any]) -> None:
        super().__init__()
        self.model = model  # the extensions are submodules of the model, so their parameters are covered
        self._config = config
        self._parts = (head_ext, tuple(exts))  # a tuple: not registered a second time

    def forward(self, x: torch.Tensor, y: torch.Tensor, progress: float) -> torch.Tensor:  # type: ignore[override]
        head_ext, exts = self._parts
        return _step_loss(self.model, self._config, head_ext, list(exts), x, y, progress)


def _data_parallel(step: _StepLoss) -> torch.nn.parallel.DistributedDataParallel:
    """``step`` wrapped in DDP (its construction broadcasts rank 0's parameters).

    ``find_unused_parameters=True``: a head replacement leaves the backbone's
    own head without gradient.  No buffer broadcast before each forward:
    batch-norm statistics stay per rank, as before DDP was used (the trainer
    broadcasts the buffers once at the start of ``fit``).
    """
    ddp_cls = torch.nn.parallel.DistributedDataParallel
    # torch >= 2.15 names the per-forward buffer sync `forward_sync_buffers` (`broadcast_buffers` is deprecated)
    no_buffer_sync = (
        {"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(ddp_cls).parameters else {"broadcast_buffers": False}
    )
    dev = step.model.device
    return ddp_cls(
        step,
        device_ids=[dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else None,
        find_unused_parameters=True,
        **no_buffer_sync,
    )


def _every_rank_trains(n: int, has_batchnorm: bool) -> bool:
    """True when every rank's slice of a batch of ``n`` is trainable (known on every rank without communication)."""
    return all(s > 0 and not (has_batchnorm and s == 1) for s in D.shard_sizes(n))


def _grad_clip(config: TrainConfig, extensions: list[Any]) -> float | None:
    """The gradient-norm clip of a step: the smallest of the config's and the attached extensions' requests."""
    asked = [config.grad_clip, *(getattr(ext, "max_grad_norm", None) for ext in extensions)]
    values = [float(v) for v in asked if v is not None]
    return min(values) if values else None


def _rank_piece(part: np.ndarray, has_batchnorm: bool) -> tuple[np.ndarray, float]:
    """This rank's contiguous slice of one global batch and its loss weight.

    The weight is the slice's share of the batch, so that summing the ranks'
    gradients (:func:`activelearn.distributed.all_reduce_gradients`) gives the
    gradient of the whole batch's mean loss.  With batch-norm a slice of one
    sample cannot train; it is left out and the others' shares renormalised.
    """
    world = D.world_size()
    sizes = D.shard_sizes(part.size, world)
    usable = [s for s in sizes if not (has_batchnorm and s == 1)]
    a, b = D.shard_range(part.size)
    if has_batchnorm and b - a == 1:
        return part[:0], 0.0
    return part[a:b], (b - a) / max(sum(usable), 1)


def evaluate(model: ALModel, x: torch.Tensor, y: torch.Tensor, *, batch_size: int | None = None) -> dict[str, float]:
    """Test metrics: accuracy (classification) or MSE (regression)."""
    if len(x) != len(y):
        raise InvalidInputError(f"test inputs and targets differ in length: {len(x)} vs {len(y)}")
    if model.task == "classification":
        probs = model.predict(x, ("probs",), batch_size=batch_size)["probs"].cpu()
        acc = float((probs.argmax(1) == torch.as_tensor(y).cpu()).float().mean())
        return {"accuracy": acc}
    pred = model.predict(x, ("logits",), batch_size=batch_size)["logits"].cpu()
    target = torch.as_tensor(y).float().view(pred.shape[0], -1)
    return {"mse": float(F.mse_loss(pred.view_as(target), target))}
