"""The active-learning loop: train -> evaluate -> select -> query -> update, per cycle.

The loop is a short sequence of steps; the work around it (progress,
history files, checkpoints, open-set and cluster accounting) is done by
:mod:`~activelearn.callbacks`.  Its state (:meth:`ActiveLoop.state_dict`) is
the composition of its parts' states, composed and loaded by
:mod:`~activelearn.loop_state`; :mod:`~activelearn.checkpoint` only saves and
reads it.  Building a loop from a saved recipe belongs to the application
layer (:func:`activelearn.experiment.resume`): this module imports no
application module.

Under ``torchrun`` (:mod:`activelearn.distributed`) every rank runs the same
loop on the same pools: the oracle is asked on rank 0 only and its answers are
broadcast, and only rank 0 writes ``history.*`` and checkpoints; training and
model passes are sharded (see ``docs/distributed.md``).

Every record's ``extra`` holds the open-set books at training time
(:class:`~activelearn.callbacks.OpenSetBooks`): ``in_task_labels``,
``rejected``, ``examined``, ``wasted_cost`` (cost spent on "not in task"
answers); for cycles that selected, ``select_calls`` and
``examined_this_cycle``; for cycles that asked about clusters, the
:class:`~activelearn.callbacks.ClusterBooks`.
"""

from __future__ import annotations

import inspect
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from . import distributed as dist_helpers
from . import loop_state
from ._validation import as_index_array, as_test_set, check_nonnegative_int, check_positive_int
from .callbacks import Callback, Checkpointer, ClusterBooks, HistoryFiles, OpenSetBooks, Progress, as_callback, open_set_books
from .loggers import CSVLogger
from .determinism import deterministic_mode
from .environment import run_environment
from .exceptions import CheckpointError, InvalidInputError, InvalidParameterError, OracleError
from .history import CycleRecord, History
from .model import ALModel
from .oracle import Oracle, Query
from .outlock import output_lock
from .pools import DECLINED, Annotation, Pools
from .selection import validate_selection
from .strategies.base import Strategy
from .trainer import Trainer, evaluate

__all__ = ["ActiveLoop", "validate_selection", "open_set_books", "set_resume_builder"]

_resume_builder: Callable[..., "ActiveLoop"] | None = None


def set_resume_builder(fn: Callable[..., "ActiveLoop"] | None) -> None:
    """Register the function behind the deprecated :meth:`ActiveLoop.resume`.

    :mod:`activelearn.experiment` registers its ``resume`` when imported, so
    the engine never imports the application layer.
    """
    global _resume_builder
    _resume_builder = fn


class ActiveLoop:
    """Runs cycles of training, evaluation, selection and annotation.

    Parameters
    ----------
    model : ALModel
    strategy : Strategy
    oracle : Oracle
        Answers the queries; the only holder of ground truth.
    pools : Pools
    test : (inputs, targets), optional
        Held-out data for the per-cycle metrics.
    trainer : Trainer, optional
        Default: ``Trainer()`` with the default :class:`~activelearn.trainer.TrainConfig`.
    budget : int
        Samples queried per cycle (in-task labels in ``"quota"`` mode).
    cycles : int
        Train/evaluate rounds; the first trains on the initial set and a
        selection follows every round but the last (so ``cycles - 1`` queries).
    initial : int or array-like, optional
        Size of a seeded random initial set, or its indices; queried before
        the first cycle (log cycle 0) unless the pools already hold labels.
    seed : int
        Seeds the random initial set.
    progress : bool
        Progress over cycles (:class:`~activelearn.callbacks.Progress`: bars on
        a terminal, one line per cycle otherwise).
    out_dir : path, optional
        Where ``history.json``/``history.csv`` and the checkpoint are written.
    callbacks : list of Callback or callables
        :class:`~activelearn.callbacks.Callback` objects, or plain callables
        called as ``cb(loop, record)`` at the end of every cycle.
    checkpoint : bool
        With ``out_dir``, save the state atomically after every cycle,
        selection and answer batch, so that :meth:`restore` continues a
        crashed run without losing or re-asking any answer.
    deterministic : bool, optional
        Run :meth:`run` inside :func:`activelearn.determinism.deterministic_mode`.
        Default: True on CPU, False on CUDA (see ``docs/reliability.md``).
    mode : {"interactions", "quota"}
        ``"interactions"``: one ``select`` of ``budget`` per cycle.
        ``"quota"`` (open-set pools): the cycle selects again, without
        retraining, for the in-task labels still missing (see :meth:`step`).
    max_select_calls : int, optional
        Quota mode only: stop the cycle after this many ``select`` calls.

    Attributes
    ----------
    recipe : dict or None
        Plain data from which :func:`activelearn.experiment.make_loop` rebuilds
        the loop; saved in checkpoints.
    pending : dict or None
        The cycle in progress while it selects and asks: ``{"record":
        CycleRecord, "query": Query or None (answered), "progress": bool
        (False when the last answers examined no sample)}``; saved in
        :meth:`state_dict`, so a resumed run neither selects nor asks again.

    Notes
    -----
    Distributed runs and the ``record.extra`` keys: see the module docstring.
    """

    def __init__(
        self,
        model: ALModel,
        strategy: Strategy,
        oracle: Oracle,
        pools: Pools,
        *,
        test: tuple[torch.Tensor, torch.Tensor] | None = None,
        trainer: Trainer | None = None,
        budget: int = 10,
        cycles: int = 5,
        initial: int | Sequence[int] | np.ndarray | None = None,
        seed: int = 0,
        progress: bool = True,
        out_dir: str | Path | None = None,
        callbacks: Sequence[Callback | Callable[[Any, CycleRecord], None]] = (),
        checkpoint: bool = True,
        deterministic: bool | None = None,
        mode: str = "interactions",
        max_select_calls: int | None = None,
    ) -> None:
        if mode not in ("interactions", "quota"):
            raise InvalidParameterError(f"mode must be 'interactions' or 'quota', got {mode!r}")
        _check_parts(strategy, oracle, pools, test)
        self.mode = mode
        self.max_select_calls = None if max_select_calls is None else check_positive_int("max_select_calls", max_select_calls)
        self.budget = check_positive_int("budget", budget)
        self.cycles = check_positive_int("cycles", cycles)
        self.model, self.strategy, self.oracle, self.pools = model, strategy, oracle, pools
        self.trainer, self.seed, self.progress = trainer or Trainer(), int(seed), progress
        self.test = None if test is None else as_test_set(test, task=model.task, num_classes=model.num_classes)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.callbacks, self.checkpoint, self.deterministic = list(callbacks), bool(checkpoint), deterministic
        self.recipe: dict[str, Any] | None = None
        self.pending: dict[str, Any] | None = None
        self._first: list[Callback] = [OpenSetBooks(), ClusterBooks()]  # before the user's callbacks
        self._last: list[Callback] = [HistoryFiles(), CSVLogger(cycles=None), Checkpointer(), Progress()]  # after them: they save what the others wrote (CSVLogger: <out_dir>/epochs.csv)
        self.initial = _initial_indices(initial, pools.n, self.seed)
        self.history = History(meta=_run_meta(self, model))

    def _emit(self, hook: str, *args: Any) -> None:
        for cb in [*self._first, *map(as_callback, self.callbacks), *self._last]:
            getattr(cb, hook)(self, *args)

    # -------------------------------------------------------------- pieces
    def query(self, indices: np.ndarray | Query, cycle: int) -> list[Annotation]:
        """Ask the oracle about ``indices`` (or a whole :class:`Query`), record its answers, return the new log entries."""
        query = Query(indices=indices.indices, groups=indices.groups, cycle=cycle) if isinstance(indices, Query) else Query(indices=indices, cycle=cycle)  # integral floats only: never truncated
        # one process asks (a person answers once); every rank records the same answers
        answers = dist_helpers.on_main_process(self.oracle.answer, query, share_result=True)
        _check_answers(query, answers)
        entries = self.pools.record(answers, cycle=cycle)
        if self.pending is not None:  # answered; a batch that examined nobody (all clusters declined) ends a quota cycle
            self.pending.update(query=None, progress=any(e.index != DECLINED for e in entries))
        self._emit("on_answers", None if self.pending is None else self.pending["record"], entries)
        return entries

    def prepare(self) -> None:
        """Attach the strategy's model extensions and check that the model serves what the strategy requires."""
        for ext in self.strategy.model_extensions():
            self.model.attach(ext)
        missing = set(self.strategy.requires) - self.model.provides()
        if missing:
            raise InvalidParameterError(
                f"strategy {self.strategy.name!r} needs model outputs {sorted(missing)} that this model does not provide "
                f"(it provides {sorted(self.model.provides())})"
            )

    _prepare = prepare  # the former private name, still called by benchmark scripts

    def step(self, cycle: int) -> CycleRecord:
        """One cycle: train, evaluate, and (unless last) select and ask; in ``"quota"`` mode again for the in-task labels still missing."""
        self._emit("on_cycle_start", cycle)
        pools = self.pools
        pools.cycle = cycle
        hook = {}  # a user Trainer whose fit() predates the per-epoch hook still works, without epoch events
        if "on_epoch_end" in inspect.signature(self.trainer.fit).parameters:
            hook["on_epoch_end"] = lambda epoch, logs: self._emit("on_epoch_end", cycle, epoch, logs)
        fit = self.trainer.fit(self.model, pools, cycle=cycle, **hook)
        metrics = {"train_loss": fit["train_loss"]}
        if self.test is not None:
            metrics.update(evaluate(self.model, self.test[0], self.test[1]))
        record = CycleRecord(cycle=cycle, n_labeled=pools.n_labeled, interactions=pools.n_interactions, cost=pools.total_cost, metrics=metrics, train_seconds=fit["train_seconds"])
        self._emit("on_record", record)
        if cycle < self.cycles - 1:
            self._acquire(record, cycle)
        return record

    def _acquire(self, record: CycleRecord, cycle: int) -> None:
        """Select and ask while :func:`_still_wanted` asks for samples (continues a cycle resumed inside its selection)."""
        if self.pending is None:
            self.pending = {"record": record, "query": None, "progress": True}
        calls = int(record.extra.get("select_calls", 0))
        while (want := _still_wanted(self, record, calls)) > 0:
            start = time.perf_counter()
            query = _select(self.strategy, self.model, self.pools, want)
            calls += 1
            record.selected = [*record.selected, *query.all_indices.tolist()]
            record.extra["select_calls"] = calls
            self._ask(record, query, cycle)
            record.select_seconds += time.perf_counter() - start
        if calls:
            record.extra["examined_this_cycle"] = len(record.selected)

    def _ask(self, record: CycleRecord, query: Query, cycle: int) -> list[Annotation]:
        """Announce the selection (checkpointed before the oracle sees it), then ask it."""
        self.pending = {"record": record, "query": query, "progress": True}
        self._emit("on_selection", record, query)
        return self.query(query, cycle + 1)

    # ---------------------------------------------------------------- state
    def identity(self) -> dict[str, Any]:
        """What a saved state must agree with to be loaded into this loop (:func:`~activelearn.loop_state.loop_identity`)."""
        return loop_state.loop_identity(self)

    def state_dict(self) -> dict[str, Any]:
        """Identity, recipe, the cycle in progress, each part's ``state_dict``, the RNG states (:func:`~activelearn.loop_state.loop_state_dict`)."""
        return loop_state.loop_state_dict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load :meth:`state_dict` into this loop, built the same way as the saved one.

        Raises
        ------
        CheckpointError
            If the state belongs to a differently built run (strategy and its
            parameters, seed, budget, cycles, pool size, initial set) or the
            model's parameters differ (checked before anything changes).
        """
        loop_state.load_loop_state(self, state)

    def restore(self, out_dir: str | Path | None = None, *, state: dict[str, Any] | None = None) -> "ActiveLoop":
        """Load the checkpoint of ``out_dir`` (default: this loop's) into this loop.

        Build the loop exactly as the interrupted one (same data, strategy,
        seed, budget...), then call ``restore`` and :meth:`run`: the run
        continues after the last saved step; a selection already made is not
        made again and an answer already recorded is never asked again.

        Raises
        ------
        CheckpointError
            If there is no checkpoint, or it belongs to a differently built run.
        """
        loop_state.restore_loop(self, out_dir, state)
        return self

    @classmethod
    def resume(cls, out_dir: str | Path, **overrides: Any) -> "ActiveLoop":
        """Deprecated: use :func:`activelearn.experiment.resume` (or build the loop and call :meth:`restore`)."""
        return _deprecated_resume(out_dir, overrides)

    # ------------------------------------------------------------------ run
    def run(self) -> History:
        """Run every remaining cycle and return the History."""
        deterministic = self.deterministic if self.deterministic is not None else self.model.device.type == "cpu"
        with output_lock(self.out_dir), deterministic_mode(deterministic):  # one writer per out_dir
            return self._run()

    def _run(self) -> History:
        self.prepare()
        self._emit("on_run_start")
        if self.pools.n_labeled == 0 and self.pools.n_rejected == 0 and self.initial.size:
            query = Query(indices=self.initial, cycle=0)
            self._emit("on_selection", None, query)
            self.query(query, 0)
        if self.pools.n_labeled == 0:
            raise InvalidInputError("no labeled samples to start from: pass initial=<int or indices> or label some first")
        for cycle in range(len(self.history), self.cycles):
            record = self.step(cycle) if self.pending is None else self._resume_cycle(cycle)
            self.history.append(record)
            self.pending = None
            self._emit("on_cycle_end", record)
        self._emit("on_run_end")
        return self.history

    def _resume_cycle(self, cycle: int) -> CycleRecord:
        """Finish a cycle restored inside its selection: ask a saved, unanswered query, then select on if the budget asks."""
        assert self.pending is not None
        record, query = self.pending["record"], self.pending["query"]
        self.pools.cycle = cycle
        if query is not None:
            self._ask(record, query, cycle)
        self._acquire(record, cycle)
        return record


def _check_parts(strategy: Strategy, oracle: Oracle, pools: Pools, test: tuple[torch.Tensor, torch.Tensor] | None) -> None:
    """The loop's refusals of its parts, before anything is built."""
    if not isinstance(strategy, Strategy):
        raise InvalidParameterError(f"strategy must be a Strategy instance, got {type(strategy).__name__}; build one with activelearn.strategies.get(name)")
    if not isinstance(oracle, Oracle):
        raise InvalidParameterError(f"oracle must have an answer(query) method, got {type(oracle).__name__}")
    if hasattr(oracle, "__len__") and len(oracle) != pools.n:  # type: ignore[arg-type]
        raise InvalidInputError(
            f"the oracle knows {len(oracle)} samples but the pool has {pools.n}; "  # type: ignore[arg-type]
            "build both from the same training set"
        )
    if test is None:
        return
    if len(test[0]) != len(test[1]):
        raise InvalidInputError(f"test inputs and targets differ in length: {len(test[0])} vs {len(test[1])}")
    if isinstance(test[0], torch.Tensor) and test[0].is_floating_point() and not bool(torch.isfinite(test[0]).all()):
        raise InvalidInputError("test inputs hold NaN or Inf; clean or drop those samples")


def _initial_indices(initial: int | Sequence[int] | np.ndarray | None, n: int, seed: int) -> np.ndarray:
    """The initial set: none, ``initial`` random indices seeded by ``seed``, or the given indices."""
    if initial is None:
        return np.zeros(0, dtype=np.int64)
    if isinstance(initial, (int, np.integer)) and not isinstance(initial, bool):
        size = check_nonnegative_int("initial", initial)
        if size >= n:
            raise InvalidParameterError(f"initial={size} would label the whole pool of {n}; use fewer")
        return np.sort(np.random.default_rng([seed, 0x1A17]).choice(n, size=size, replace=False))
    idx = as_index_array(initial, "initial", n=n)
    if idx.size >= n:
        raise InvalidParameterError(f"the initial set covers the whole pool of {n}; leave samples to select from")
    return idx


def _check_answers(query: Query, answers: Sequence[Any]) -> None:
    """The oracle answered about what it was asked, and about every sample asked one by one."""
    asked = set(query.all_indices.tolist())
    answered = {a.index for a in answers if a.index != DECLINED}
    if answered - asked:
        raise OracleError(f"the oracle answered about indices it was not asked: {sorted(answered - asked)[:5]}")
    if set(np.asarray(query.indices).tolist()) - answered:
        raise OracleError(f"the oracle left {len(set(np.asarray(query.indices).tolist()) - answered)} queried sample(s) unanswered")


def _run_meta(loop: ActiveLoop, model: ALModel) -> dict[str, Any]:
    """The History's meta: the run's settings and environment."""
    return {
        "strategy": loop.strategy.name or type(loop.strategy).__name__,
        "strategy_params": loop_state.plain_params(loop.strategy),
        "budget": loop.budget,
        "mode": loop.mode,
        "cycles": loop.cycles,
        "seed": loop.seed,
        "pool_size": loop.pools.n,
        "train_config": {k: v for k, v in asdict(loop.trainer.config).items() if k != "extra"},
        "environment": run_environment(model.device),
    }


def _select(strategy: Strategy, model: ALModel, pools: Pools, want: int) -> Query:
    """The strategy's checked selection of ``want`` samples, as a query (its warnings always shown)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        selection = strategy.select(model, pools, want)
    chosen = validate_selection(selection, pools, want)
    return chosen if isinstance(chosen, Query) else Query(indices=chosen)


def _deprecated_resume(out_dir: str | Path, overrides: dict[str, Any]) -> ActiveLoop:
    warnings.warn(
        "ActiveLoop.resume is deprecated; use activelearn.experiment.resume(out_dir), "
        "or build the loop as before and call loop.restore(out_dir)",
        DeprecationWarning,
        stacklevel=3,
    )
    if _resume_builder is None:
        raise CheckpointError("ActiveLoop.resume needs activelearn.experiment: call activelearn.experiment.resume(out_dir)")
    return _resume_builder(out_dir, **overrides)


def _still_wanted(loop: ActiveLoop, record: CycleRecord, calls: int) -> int:
    """Samples the cycle's next ``select`` asks for after ``calls`` calls; 0 once its selection is done.

    ``"interactions"`` mode: one call of ``budget``.  ``"quota"``: calls go on
    for the in-task labels still missing until ``record.n_labeled + budget``
    are labeled, ``max_select_calls`` is reached, or a call examined no sample
    (every interaction declined, e.g. proposed clusters: asking on could loop
    forever); either way, none once the unlabeled pool is exhausted.
    """
    quota = loop.mode == "quota"
    limit = (loop.max_select_calls or np.inf) if quota else 1
    if calls >= limit or loop.pools.n_unlabeled == 0 or not (loop.pending or {}).get("progress", True):
        return 0
    return max(0, record.n_labeled + loop.budget - loop.pools.n_labeled) if quota else loop.budget
