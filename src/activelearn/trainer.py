"""Training and evaluation of an :class:`~activelearn.model.ALModel` on the labeled pool.

Configurations are data: a :class:`TrainConfig` holds everything that defines a
schedule, and the papers' setups are instances of it (see
:mod:`activelearn.configs`).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F

from . import distributed as D
from ._validation import Interval, check_params, check_positive_int
from .batches import LabeledBatches, Transform, UnlabeledBatches
from .exceptions import InvalidInputError, InvalidParameterError
from .model import ALModel
from .pools import Pools
from .steps import ParallelStep, StepBatch, rank_slice, resolve_loss, sit_out_batch, trained_by_some_rank, zero_loss

__all__ = ["TrainConfig", "Trainer", "evaluate", "resolve_loss"]


_FINITE_POSITIVE = Interval(numbers.Real, 0, float("inf"), closed="neither")
#: the numeric TrainConfig fields and what they accept
_NUMBER_FIELDS: dict[str, list[Any]] = {
    "lr": [_FINITE_POSITIVE],
    "momentum": [Interval(numbers.Real, 0, 1, closed="left")],
    "weight_decay": [Interval(numbers.Real, 0, float("inf"), closed="left")],
    "gamma": [_FINITE_POSITIVE],
    "grad_clip": [_FINITE_POSITIVE, None],
    "label_smoothing": [Interval(numbers.Real, 0, 1, closed="left")],
}


def _is_epoch(m: Any) -> bool:
    return isinstance(m, numbers.Integral) and not isinstance(m, bool) and int(m) >= 1


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
    loss: Literal["auto", "cross_entropy", "mse"] = "auto"  # main loss; "auto": the model's task decides (cross-entropy for classification, MSE for regression)
    from_scratch: bool = True  # re-initialise the model before each cycle (else continue training)
    amp: bool = True  # mixed precision on CUDA (ignored on CPU)
    drop_last: bool = False  # drop a last incomplete batch
    grad_clip: float | None = None  # clip each step's global gradient norm (None: no clip; extensions may ask, see ModelExtension.max_grad_norm)
    label_smoothing: float = 0.0  # in [0, 1): the main cross-entropy's target smoothing (0: none; refused with MSE; a head replacement's head_loss ignores it)
    undersample_rejected: bool = False  # open-set models: cap the rejected samples trained as class K per cycle (see _training_set)
    seed: int = 0  # seeds shuffling, augmentation and dropout (forked RNG; global state untouched)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes kept with results

    def __post_init__(self) -> None:
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        if self.optimizer not in ("sgd", "adam", "adamw"):
            raise InvalidParameterError(f"optimizer must be 'sgd', 'adam' or 'adamw', got {self.optimizer!r}")
        if self.loss not in ("auto", "cross_entropy", "mse"):
            raise InvalidParameterError(f"loss must be 'auto', 'cross_entropy' or 'mse', got {self.loss!r}")
        check_params({name: getattr(self, name) for name in _NUMBER_FIELDS}, _NUMBER_FIELDS)
        if not isinstance(self.undersample_rejected, bool):
            raise InvalidParameterError(f"undersample_rejected must be True or False, got {self.undersample_rejected!r}")
        if self.loss == "mse" and self.label_smoothing > 0:
            raise InvalidParameterError(f"label_smoothing={self.label_smoothing!r} applies to cross-entropy only, but loss='mse'; set label_smoothing=0.0")
        if isinstance(self.milestones, (str, bytes)) or not all(_is_epoch(m) for m in self.milestones):
            raise InvalidParameterError(f"milestones must be epochs (ints >= 1), got {self.milestones!r}; fractions are never rounded")
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
    slice of each global mini-batch (``batch_size`` stays the global batch
    size; every rank takes the same number of steps).  The step's whole loss
    (model forward, main or head loss, extension losses) is one module
    (:class:`activelearn.steps.StepLoss`) wrapped in
    :class:`torch.nn.parallel.DistributedDataParallel`, whose backward averages
    the gradients; each rank's loss is scaled by ``world_size`` times its
    slice's share of the batch, so every step applies the gradient of the
    whole batch's mean loss, as one process would, up to float rounding.
    Gradient clipping follows the (synchronised) backward.  A rank whose
    slice is empty, or a single sample with batch-norm, runs the step on a
    stand-in sample with weight 0 (:func:`activelearn.steps.zero_loss`).
    See ``docs/distributed.md``.
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

    def _prepare_optimizer(self, model: ALModel) -> torch.optim.Optimizer:
        """A fresh optimizer (and initial weights) with ``from_scratch``, else the previous cycle's."""
        if self.config.from_scratch or self.optimizer is None:
            if self.config.from_scratch:
                model.reset_parameters()
            self.optimizer = self._make_optimizer(model)
        return self.optimizer

    def fit(
        self, model: ALModel, pools: Pools, *, cycle: int = 0, on_epoch_end: Callable[[int, dict[str, float]], None] | None = None
    ) -> dict[str, float]:
        """Train on ``pools.labeled`` with the labels the oracle gave.

        With ``model.open_set`` the rejected samples (``pools.rejected``) are
        trained too, as class ``model.num_classes`` (the auxiliary class K+1).
        ``on_epoch_end(epoch, {"train_loss", "lr"})`` is called after each epoch.

        Returns a summary (final training loss, seconds).
        """
        _main_loss_kind(self.config, model.task)  # refuses label smoothing with MSE before anything changes
        idx, targets = _training_set(model, pools, self.config, cycle)
        start = time.perf_counter()
        model.build_extensions(pools.inputs(idx[:2]))  # before DDP wraps the model: it registers the parameters that exist
        run = _FitRun(self.config, model, pools, idx, targets, self._prepare_optimizer(model), cycle, self.transform)
        epochs: Any = range(self.config.epochs)
        if self.progress:
            from .progress import tqdm  # a bar on a terminal, silent in a log

            epochs = tqdm(epochs, desc=f"train c{cycle}", leave=False)
        last_loss = run.run(epochs, on_epoch_end)
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


def _main_loss_kind(config: TrainConfig, task: str) -> str:
    """The main loss of ``config`` on ``task`` (:func:`resolve_loss`); label smoothing with MSE is refused.

    ``loss="mse"`` with smoothing is already refused by :class:`TrainConfig`;
    ``loss="auto"`` resolves to MSE on a regression task, known only here.
    """
    kind = resolve_loss(config.loss, task)
    if kind == "mse" and config.label_smoothing > 0:
        raise InvalidParameterError(
            f"label_smoothing={config.label_smoothing!r} applies to cross-entropy only, but the main loss is MSE "
            f"(loss={config.loss!r}, task={task!r}); set label_smoothing=0.0"
        )
    return kind


def _training_set(model: ALModel, pools: Pools, config: TrainConfig, cycle: int) -> tuple[np.ndarray, torch.Tensor]:
    """Pool indices and targets to train on; with ``open_set`` the rejected samples as class K (the K+1-th).

    With ``config.undersample_rejected`` the rejected samples are capped at
    the mean number of labeled samples per in-task class present,
    ``ceil(n_labeled / number of distinct labels)``, so the auxiliary class is
    no larger than an average real class.  Why: Kim, Kim & Hwang's MixMNIST
    protocol undersamples the labeled non-iD samples when training the
    K+1-class classifier; the paper does not give the ratio, this cap is our
    choice.  When more are rejected, a subset of that size is drawn with a
    ``torch.Generator`` seeded by ``SeedSequence([seed, cycle, 0x5EC7])``
    (never the global RNG), so it is fixed for the whole cycle and the same
    for the same seed and cycle.
    """
    idx = pools.labeled
    if idx.size == 0:
        raise InvalidInputError("no labeled samples to train on; query an initial set first")
    targets = torch.as_tensor(pools.labels_of(idx))
    if getattr(model, "open_set", False):  # the "not in task" device
        rej = pools.rejected
        if config.undersample_rejected:
            rej = _undersampled(rej, targets, config.seed, cycle)
        idx = np.concatenate([idx, rej])
        targets = torch.cat([targets, torch.full((rej.size,), model.num_classes, dtype=targets.dtype)])
    return idx, targets


def _undersampled(rejected: np.ndarray, targets: torch.Tensor, seed: int, cycle: int) -> np.ndarray:
    """At most ``ceil(len(targets) / distinct targets)`` of ``rejected`` (a seeded subset, in pool order)."""
    cap = math.ceil(targets.numel() / max(int(torch.unique(targets).numel()), 1))
    if rejected.size <= cap:
        return rejected
    gen = torch.Generator().manual_seed(int(np.random.SeedSequence([int(seed), int(cycle), 0x5EC7]).generate_state(1)[0]))
    pick = torch.randperm(rejected.size, generator=gen)[:cap].numpy()
    return rejected[np.sort(pick)]


class _FitRun:
    """The state of one ``Trainer.fit``: seeded generators, schedule, batch streams, the (data-parallel) step.

    Seeds: the labeled permutations draw from a generator seeded by
    ``SeedSequence([seed, cycle])``, augmentation from that seed + 2, the
    forked global RNG (dropout, extensions) from that seed + 1, the unlabeled
    stream from ``(seed, cycle, 1)``.
    """

    def __init__(
        self, config: TrainConfig, model: ALModel, pools: Pools, idx: np.ndarray, targets: torch.Tensor,
        opt: torch.optim.Optimizer, cycle: int, transform: Transform | None,
    ) -> None:
        self.c, self.model, self.pools, self.idx, self.targets, self.opt, self.transform = config, model, pools, idx, targets, opt, transform
        for group in opt.param_groups:
            group["lr"] = config.lr
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(config.milestones), gamma=config.gamma)
        self.use_amp = bool(config.amp and model.device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence([config.seed, cycle]).generate_state(1)[0]))
        self.aug_gen = torch.Generator().manual_seed(int(gen.initial_seed()) + 2)
        self.torch_seed = int(gen.initial_seed()) + 1
        self.has_batchnorm = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
        self.batches = LabeledBatches(idx, config.batch_size, config.drop_last, self.has_batchnorm, gen)
        exts = list(model.extensions.values())
        self.params = [p for g in opt.param_groups for p in g["params"]]
        self.clip = _grad_clip(config, exts)
        wants_unlabeled = any(getattr(e, "uses_unlabeled", False) for e in exts)
        self.unlabeled = UnlabeledBatches(pools, config.batch_size, config.seed, cycle) if wants_unlabeled else None
        self.sharded = D.is_distributed()
        self.world = D.world_size()
        self.step = 0
        self.cycle = cycle

    def run(self, epochs: Any, on_epoch_end: Callable[[int, dict[str, float]], None] | None) -> float:
        """Train every epoch; the last epoch's mean training loss."""
        dev = self.model.device
        last_loss = float("nan")
        with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
            torch.manual_seed(self.torch_seed)
            step = ParallelStep(self.model, _main_loss_kind(self.c, self.model.task), label_smoothing=float(self.c.label_smoothing))  # under DDP: broadcasts rank 0's weights and buffers
            try:
                for epoch in epochs:
                    last_loss = self._epoch(step, epoch)
                    if on_epoch_end is not None:  # per-epoch hook (loggers); lr of this epoch, before the scheduler's step
                        on_epoch_end(epoch, {"train_loss": last_loss, "lr": float(self.opt.param_groups[0]["lr"])})
                    self.scheduler.step()
            except BaseException:
                step.close(sync=False)  # another rank may not reach a collective any more
                raise
            step.close()
        return last_loss

    def _epoch(self, step: ParallelStep, epoch: int) -> float:
        """One pass over the labeled set; its mean loss (over every rank's samples)."""
        self.model.train()
        progress = epoch / self.c.epochs
        parts = [p for p in self.batches.epoch() if not self.sharded or trained_by_some_rank(p.size, self.has_batchnorm)]
        reader = self.batches.reader(self.pools, parts, _epoch_seed(self.c.seed, self.cycle, epoch))
        total, count = 0.0, 0.0
        for part in parts:
            loss_sum, n = self._step(step, part, next(reader), progress, epoch)
            total += loss_sum
            count += n
        if self.sharded:
            total, count = D.all_reduce_sum([total, count])
        return total / max(count, 1)

    def _step(self, step: ParallelStep, part: np.ndarray, x_all: torch.Tensor, progress: float, epoch: int) -> tuple[float, int]:
        """One optimisation step on the global batch ``part`` (inputs ``x_all``); (sum of this rank's losses, its samples)."""
        a, b, weight = rank_slice(part.size, self.has_batchnorm) if self.sharded else (0, part.size, 1.0)
        keep = slice(a, b) if weight > 0 else slice(0, 1)  # a rank that sits out computes a stand-in sample
        dev = self.model.device
        x = self.batches.rank_inputs(x_all, self.transform, self.aug_gen, keep, dev)
        mine = part[keep]
        batch = StepBatch(x, self.targets[torch.from_numpy(mine)].to(dev), self.idx[mine], progress, self.step, epoch)
        if self.unlabeled is not None:  # drawn on every rank, also one that sits out, so the streams stay aligned
            batch.unlabeled_indices, batch.unlabeled_inputs = self.unlabeled.next(self.transform, dev)
        with torch.autocast("cuda", dtype=torch.bfloat16) if self.use_amp else contextlib.nullcontext():
            loss = step(batch) if weight > 0 else zero_loss(step, sit_out_batch(batch))
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss * (weight * self.world)).backward()  # DDP averages: world x share = the share-weighted sum
        self._apply()
        self.step += 1
        return (float(loss.detach()) * mine.size, mine.size) if weight > 0 else (0.0, 0)

    def _apply(self) -> None:
        """Clip the (synchronised, unscaled) gradient if asked, then update."""
        if self.clip is not None:
            self.scaler.unscale_(self.opt)  # clip the true gradient, not the AMP-scaled one
            torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.scaler.step(self.opt)
        self.scaler.update()


def _epoch_seed(seed: int, cycle: int, epoch: int) -> int:
    """Seed of a Dataset pool's own augmentations in one epoch (the tensor path ignores it)."""
    return int(np.random.SeedSequence([int(seed), int(cycle), int(epoch), 0xDA7A]).generate_state(1)[0])


def _grad_clip(config: TrainConfig, extensions: list[Any]) -> float | None:
    """The gradient-norm clip of a step: the smallest of the config's and the attached extensions' requests."""
    asked = [config.grad_clip, *(getattr(ext, "max_grad_norm", None) for ext in extensions)]
    values = [float(v) for v in asked if v is not None]
    return min(values) if values else None


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
