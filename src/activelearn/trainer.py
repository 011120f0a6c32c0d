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
from .model import ALModel, StepContext
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
        If it takes a ``generator`` keyword it gets a ``torch.Generator`` seeded from
        ``(config.seed, cycle)``, so augmentation never touches the global RNG.
    progress : bool
        Show a progress bar over epochs.

    Notes
    -----
    In a ``torch.distributed`` run (:mod:`activelearn.distributed`) every rank
    draws the same shuffled order (same seed) and trains on its contiguous
    slice of each mini-batch (the labeled set is thus sharded like
    ``DistributedSampler`` would, but per batch, so ``batch_size`` stays the
    global batch size).  Each rank's loss is weighted by its slice's share and
    the gradients are summed over ranks with one all-reduce per step, which is
    the data-parallel update of ``DistributedDataParallel`` (same starting
    weights broadcast from rank 0, same averaged gradient on every rank, so the
    replicas stay identical).  The all-reduce is done explicitly after
    ``backward`` rather than by wrapping the model in DDP: a head replacement
    leaves the backbone's head without gradient, which DDP only accepts with
    ``find_unused_parameters=True``, and that option rejects extension losses
    computed outside ``forward`` (both failures observed with torch 2.15; see
    ``docs/distributed.md``).  Batch-norm statistics are per rank (no
    SyncBatchNorm).
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

    def fit(
        self, model: ALModel, pools: Pools, *, cycle: int = 0, on_epoch_end: Callable[[int, dict[str, float]], None] | None = None
    ) -> dict[str, float]:
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
        aug_gen = torch.Generator().manual_seed(int(gen.initial_seed()) + 2)
        n = idx.size
        epochs = range(c.epochs)
        if self.progress:
            from .progress import tqdm  # a bar on a terminal, silent in a log

            epochs = tqdm(epochs, desc=f"train c{cycle}", leave=False)
        last_loss = float("nan")
        head_ext = model.head_extension
        exts = list(model.extensions.values())
        has_batchnorm = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
        sharded = D.is_distributed()
        if sharded:  # same starting weights everywhere, as DistributedDataParallel ensures
            D.broadcast_module(model)
        params = [p for g in opt.param_groups for p in g["params"]]
        clip = _grad_clip(c, exts)
        unlabeled = _UnlabeledBatches(pools, c, cycle) if any(getattr(e, "uses_unlabeled", False) for e in exts) else None
        step = 0
        with torch.random.fork_rng(devices=[model.device.index or 0] if model.device.type == "cuda" else []):
            torch.manual_seed(int(gen.initial_seed()) + 1)
            for epoch in epochs:
                model.train()
                progress = epoch / c.epochs
                perm = torch.randperm(n, generator=gen).numpy()
                total, count = 0.0, 0.0
                for s in range(0, n, c.batch_size):
                    part = perm[s : s + c.batch_size]
                    if c.drop_last and part.size < c.batch_size and n > c.batch_size:
                        break
                    if part.size == 1 and n > 1 and has_batchnorm:
                        continue  # batch-norm cannot train on a single sample
                    weight = 1.0
                    if sharded:
                        part, weight = _rank_piece(part, has_batchnorm)
                        if part.size == 0:  # nothing here this step: still take part in the gradient sum
                            opt.zero_grad(set_to_none=True)
                            scaler.scale(torch.zeros((), device=model.device))  # sets up the scale if unused so far
                            _apply_step(opt, scaler, params, clip, sharded)  # same sync and clip as the ranks that trained
                            continue
                    x = pools.inputs(idx[part])
                    if self.transform is not None:
                        x = _augment(self.transform, x, aug_gen)
                    x = x.to(model.device, non_blocking=True)
                    y = y_all[torch.from_numpy(part)].to(model.device)
                    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else contextlib.nullcontext()
                    with ctx:
                        out = model(x)
                        if getattr(model, "open_set", False) and out.logits.shape[1] != model.num_classes + 1:
                            raise InvalidParameterError(
                                f"open_set=True needs a backbone with num_classes + 1 = {model.num_classes + 1} outputs "
                                f"(the last is 'not in task'), got {out.logits.shape[1]}; build it with num_classes={model.num_classes + 1}"
                            )
                        if head_ext is not None:
                            loss = head_ext.head_loss(out, y, progress)
                        else:
                            loss = _main_loss(c, out.logits, y)
                        step_ctx = StepContext(out, y, progress, x, model, idx[part], step=step, epoch=epoch)
                        if unlabeled is not None:
                            step_ctx.unlabeled_indices, step_ctx.unlabeled_inputs = unlabeled.next(self.transform, model.device, sharded)
                        for ext in exts:
                            extra = ext.step_loss(step_ctx)  # type: ignore[operator]
                            if extra is not None:
                                loss = loss + extra
                    opt.zero_grad(set_to_none=True)
                    scaler.scale(loss * weight).backward()
                    _apply_step(opt, scaler, params, clip, sharded)
                    total += float(loss.detach()) * part.size
                    count += part.size
                    step += 1
                if sharded:
                    total, count = D.all_reduce_sum([total, count])
                last_loss = total / max(count, 1)
                if on_epoch_end is not None:  # per-epoch hook (loggers); lr of this epoch, before the scheduler's step
                    on_epoch_end(epoch, {"train_loss": last_loss, "lr": float(opt.param_groups[0]["lr"])})
                scheduler.step()
        model.mark_trained()
        return {"train_loss": last_loss, "train_seconds": time.perf_counter() - start}

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state (None before the first fit); the config is the constructor's."""
        return {"optimizer": self.optimizer.state_dict() if self.optimizer is not None else None}

    def load_state_dict(self, state: dict[str, Any], *, model: ALModel) -> None:
        """Restore :meth:`state_dict`; ``model`` is the model the optimizer steps (its parameters)."""
        if state["optimizer"] is None:
            self.optimizer = None
            return
        self.optimizer = self._make_optimizer(model)
        self.optimizer.load_state_dict(state["optimizer"])


class _UnlabeledBatches:
    """Seeded unlabeled batches for extensions with ``uses_unlabeled``: a walk through permutations of the pool.

    The generator is seeded from ``(TrainConfig.seed, cycle, 1)``, independent of
    the labeled shuffling, so attaching such an extension does not change the
    labeled batches.  Each step takes the next ``batch_size`` samples of the
    current permutation (a new permutation when it runs out), as cycling a
    shuffled unlabeled loader does.  In a distributed run every rank draws the
    same batch and keeps its contiguous slice.
    """

    def __init__(self, pools: Pools, config: TrainConfig, cycle: int) -> None:
        self.pools = pools
        self.pool = pools.unlabeled
        self.size = min(config.batch_size, self.pool.size)
        seed = int(np.random.SeedSequence([config.seed, cycle, 1]).generate_state(1)[0])
        self.gen = torch.Generator().manual_seed(seed)
        self.aug_gen = torch.Generator().manual_seed(seed + 1)
        self.order = np.zeros(0, dtype=np.int64)
        self.pos = 0

    def next(
        self, transform: Callable[[torch.Tensor], torch.Tensor] | None, device: torch.device, sharded: bool
    ) -> tuple[np.ndarray | None, torch.Tensor | None]:
        """The next (indices, inputs on ``device``), or (None, None) when the unlabeled pool is empty."""
        if self.size == 0:
            return None, None
        if self.pos + self.size > self.order.size:
            self.order = self.pool[torch.randperm(self.pool.size, generator=self.gen).numpy()]
            self.pos = 0
        rows = self.order[self.pos : self.pos + self.size]
        self.pos += self.size
        if sharded:
            a, b = D.shard_range(rows.size)
            rows = rows[a:b]
        x = self.pools.inputs(rows)
        if transform is not None and len(x):
            x = _augment(transform, x, self.aug_gen)
        return rows, x.to(device, non_blocking=True)


def _apply_step(
    opt: torch.optim.Optimizer, scaler: Any, params: list[torch.nn.Parameter], clip: float | None, sharded: bool
) -> None:
    """Finish a step after ``backward``: sum gradients over ranks, clip, update.

    Every rank runs this, also a rank that sat the step out, so the replicas
    apply the same synchronised, clipped gradient.
    """
    if sharded:
        D.all_reduce_gradients(params)
    if clip is not None:
        scaler.unscale_(opt)  # clip the true gradient, not the AMP-scaled one
        torch.nn.utils.clip_grad_norm_(params, clip)
    scaler.step(opt)
    scaler.update()


def _augment(transform: Callable[..., torch.Tensor], x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """``transform`` per sample, given ``generator=gen`` when it takes one (then it never draws from the global RNG)."""
    try:
        takes_gen = "generator" in inspect.signature(transform).parameters
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        takes_gen = False
    return torch.stack([transform(xi, generator=gen) if takes_gen else transform(xi) for xi in x])


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
