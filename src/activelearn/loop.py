"""The active-learning loop: train -> evaluate -> select -> query -> update, per cycle."""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from . import checkpoint as ckpt
from . import distributed as dist_helpers
from ._validation import as_index_array, check_nonnegative_int, check_positive_int
from .determinism import deterministic_mode
from .exceptions import CheckpointError, InvalidInputError, InvalidParameterError, OracleError, SelectionError
from .history import CycleRecord, History
from .model import ALModel
from .oracle import Oracle, Query
from .pools import DECLINED, Annotation, Pools
from .strategies.base import Strategy
from .trainer import Trainer, evaluate

__all__ = ["ActiveLoop", "validate_selection", "open_set_books"]


def open_set_books(pools: Pools) -> dict[str, float]:
    """In-task labels, rejected ("not in task") samples, examined samples and wasted cost so far."""
    wasted = float(sum(a.cost for a in pools.log if not a.in_task))
    return {
        "in_task_labels": pools.n_labeled,
        "rejected": pools.n_rejected,
        "examined": pools.n_labeled + pools.n_rejected,
        "wasted_cost": wasted,
    }


def validate_selection(selection: Any, pools: Pools, budget: int) -> np.ndarray | Query:
    """Check what a strategy returned: unique ints, all unlabeled, exactly the budget.

    A plain selection is an index array of ``min(budget, pools.n_unlabeled)``
    entries.  A :class:`Query` (samples plus clusters) must make exactly that
    many interactions (``len(indices) + len(groups)``), with non-empty groups,
    and every index it touches unlabeled and touched once.  Returns the int64
    array, or the Query with int64 arrays.
    """
    if isinstance(selection, Query):
        indices = _index_array(selection.indices, "query indices")
        groups = tuple(_index_array(g, "a query group") for g in selection.groups)
        if any(g.size == 0 for g in groups):
            raise SelectionError("a query group (cluster) is empty; every cluster needs at least one member")
        n_inter = indices.size + len(groups)
        expected = min(budget, pools.n_unlabeled)
        if n_inter != expected:
            raise SelectionError(f"the strategy asked for {n_inter} interactions ({indices.size} samples + {len(groups)} clusters), expected exactly {expected}")
        _check_unique_unlabeled(np.concatenate([indices, *groups]), pools)
        return Query(indices=indices, groups=groups, cycle=selection.cycle)
    arr = _index_array(selection, "a selection")
    expected = min(budget, pools.n_unlabeled)
    if arr.size != expected:
        raise SelectionError(f"the strategy returned {arr.size} indices, expected exactly {expected}")
    _check_unique_unlabeled(arr, pools)
    return arr


def _index_array(selection: Any, what: str) -> np.ndarray:
    arr = np.asarray(selection)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise SelectionError(f"{what} must be a 1-D array of ints, got dtype {arr.dtype} shape {arr.shape}")
    return arr.astype(np.int64)


def _check_unique_unlabeled(arr: np.ndarray, pools: Pools) -> None:
    uniq, counts = np.unique(arr, return_counts=True)
    if uniq.size != arr.size:
        raise SelectionError(f"duplicate indices detected in the selection: {uniq[counts > 1][:5].tolist()}")
    if arr.size and (arr.min() < 0 or arr.max() >= pools.n):
        raise SelectionError(f"selected indices must lie in [0, {pools.n}), got {arr.min()}..{arr.max()}")
    not_unlabeled = arr[~pools.unlabeled_mask[arr]]
    if not_unlabeled.size:
        raise SelectionError(f"{not_unlabeled.size} selected indices are not in the unlabeled pool, e.g. {not_unlabeled[:5].tolist()}")


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
        Samples queried per cycle.
    cycles : int
        Train/evaluate rounds; the first trains on the initial set and a
        selection follows every round but the last (so ``cycles - 1`` queries).
    initial : int or array-like, optional
        Size of a seeded random initial set, or its indices; queried from the
        oracle before the first cycle (log cycle 0) unless the pools already
        hold labels.
    seed : int
        Seeds the random initial set.
    progress : bool
        Progress bars over cycles (and epochs, if the trainer shows them).
    out_dir : path, optional
        Where ``history.json`` and ``history.csv`` are written after every cycle,
        and the checkpoint (see :mod:`activelearn.checkpoint`).
    callbacks : list of callables
        Called as ``cb(loop, record)`` after every cycle.
    checkpoint : bool
        With ``out_dir``, save the whole state atomically after every cycle,
        every selection and every oracle answer batch, so that
        :meth:`resume` / :meth:`restore` continue a crashed run without
        losing or re-asking any answer.
    deterministic : bool, optional
        Run inside :func:`activelearn.determinism.deterministic_mode`
        (``torch.use_deterministic_algorithms``, scoped to :meth:`run`).
        Default: True on CPU, False on CUDA (see ``docs/reliability.md``).

    Attributes
    ----------
    recipe : dict or None
        Plain data from which the loop can be rebuilt (set by
        :func:`activelearn.experiment.make_loop`); saved in checkpoints so that
        :meth:`resume` needs only the folder.
    mode : {"interactions", "quota"}
        ``"interactions"`` (default): one ``select`` per cycle, ``budget``
        samples examined.  ``"quota"``: ``budget`` counts *in-task labels* per
        cycle; the cycle keeps calling ``select`` (without retraining), each time
        asking for the labels still missing, until the quota is met exactly or
        the unlabeled pool is exhausted (for open-set pools, where the oracle
        may answer "not in task").
    max_select_calls : int, optional
        Quota mode only: stop the cycle after this many ``select`` calls.

    Notes
    -----
    Under ``torchrun`` (:mod:`activelearn.distributed`) every rank runs the
    same loop on the same pools: the oracle is asked on rank 0 only and its
    answers are broadcast, and only rank 0 writes ``history.*`` and
    checkpoints; training and model passes are sharded (see
    ``docs/distributed.md``).

    Every record's ``extra`` holds the open-set books at training time:
    ``in_task_labels``, ``rejected``, ``examined``, ``wasted_cost`` (cost
    spent on "not in task" answers), and, for cycles that selected,
    ``select_calls`` and ``examined_this_cycle``.
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
        callbacks: Sequence[Callable[["ActiveLoop", CycleRecord], None]] = (),
        checkpoint: bool = True,
        deterministic: bool | None = None,
        mode: str = "interactions",
        max_select_calls: int | None = None,
    ) -> None:
        if mode not in ("interactions", "quota"):
            raise InvalidParameterError(f"mode must be 'interactions' or 'quota', got {mode!r}")
        self.mode = mode
        self.max_select_calls = None if max_select_calls is None else check_positive_int("max_select_calls", max_select_calls)
        if not isinstance(strategy, Strategy):
            raise InvalidParameterError(f"strategy must be a Strategy instance, got {type(strategy).__name__}; build one with activelearn.strategies.get(name)")
        if not isinstance(oracle, Oracle):
            raise InvalidParameterError(f"oracle must have an answer(query) method, got {type(oracle).__name__}")
        self.budget = check_positive_int("budget", budget)
        self.cycles = check_positive_int("cycles", cycles)
        self.model, self.strategy, self.oracle, self.pools = model, strategy, oracle, pools
        self.trainer = trainer or Trainer()
        self.test = test
        if test is not None and len(test[0]) != len(test[1]):
            raise InvalidInputError(f"test inputs and targets differ in length: {len(test[0])} vs {len(test[1])}")
        if test is not None and isinstance(test[0], torch.Tensor) and test[0].is_floating_point() and not bool(torch.isfinite(test[0]).all()):
            raise InvalidInputError("test inputs hold NaN or Inf; clean or drop those samples")
        if hasattr(oracle, "__len__") and len(oracle) != pools.n:  # type: ignore[arg-type]
            raise InvalidInputError(
                f"the oracle knows {len(oracle)} samples but the pool has {pools.n}; "  # type: ignore[arg-type]
                "build both from the same training set"
            )
        self.seed = int(seed)
        self.progress = progress
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.callbacks = list(callbacks)
        self.checkpoint = bool(checkpoint)
        self.deterministic = deterministic
        self.recipe: dict[str, Any] | None = None
        self._pending_record: CycleRecord | None = None
        self._resume_pending: dict[str, Any] | None = None
        self.initial = self._initial_indices(initial)
        self.history = History(meta={
            "strategy": strategy.name or type(strategy).__name__,
            "strategy_params": {k: v for k, v in strategy.get_params().items() if isinstance(v, (int, float, str, bool, type(None)))},
            "budget": self.budget,
            "mode": self.mode,
            "cycles": self.cycles,
            "seed": self.seed,
            "pool_size": pools.n,
            "train_config": {k: v for k, v in asdict(self.trainer.config).items() if k != "extra"},
        })

    def _initial_indices(self, initial: int | Sequence[int] | np.ndarray | None) -> np.ndarray:
        if initial is None:
            return np.zeros(0, dtype=np.int64)
        if isinstance(initial, (int, np.integer)) and not isinstance(initial, bool):
            n = check_nonnegative_int("initial", initial)
            if n >= self.pools.n:
                raise InvalidParameterError(f"initial={n} would label the whole pool of {self.pools.n}; use fewer")
            return np.sort(np.random.default_rng([self.seed, 0x1A17]).choice(self.pools.n, size=n, replace=False))
        idx = as_index_array(initial, "initial", n=self.pools.n)
        if idx.size >= self.pools.n:
            raise InvalidParameterError(f"the initial set covers the whole pool of {self.pools.n}; leave samples to select from")
        return idx

    # -------------------------------------------------------------- pieces
    def query(self, indices: np.ndarray | Query, cycle: int) -> list[Annotation]:
        """Ask the oracle about ``indices`` (or a whole :class:`Query`) and record its answers.

        Returns the log entries appended to the pools.
        """
        if isinstance(indices, Query):
            query = Query(indices=indices.indices, groups=indices.groups, cycle=cycle)
        else:
            query = Query(indices=np.asarray(indices, dtype=np.int64), cycle=cycle)
        # one process asks (a person answers once); every rank records the same answers
        answers = dist_helpers.on_main_process(self.oracle.answer, query, share_result=True)
        asked = set(query.all_indices.tolist())
        answered = {a.index for a in answers if a.index != DECLINED}
        if answered - asked:
            raise OracleError(f"the oracle answered about indices it was not asked: {sorted(answered - asked)[:5]}")
        if set(np.asarray(query.indices).tolist()) - answered:
            raise OracleError(f"the oracle left {len(set(np.asarray(query.indices).tolist()) - answered)} queried sample(s) unanswered")
        entries = self.pools.record(answers, cycle=cycle)
        self._save("answered", pending=self._pending_record, answered=True)
        return entries

    def _cluster_books(self, entries: Sequence[Annotation]) -> dict[str, float]:
        """Per-cycle counts of cluster interactions and the true accuracy of cluster labels.

        The accuracy comes from the oracle's optional ``audit(indices, labels)``
        (the simulated oracle has it); strategies never see it.
        """
        cluster = [e for e in entries if e.source == "cluster"]
        if not cluster:
            return {}
        labeled = [e for e in cluster if e.index != DECLINED and e.in_task]
        books: dict[str, float] = {
            "clusters_accepted": float(len({e.interaction for e in labeled})),
            "clusters_declined": float(sum(1 for e in cluster if e.index == DECLINED)),
            "cluster_labeled": float(len(labeled)),
        }
        audit = getattr(self.oracle, "audit", None)
        if callable(audit) and labeled:
            books["cluster_label_accuracy"] = float(audit([e.index for e in labeled], [e.label for e in labeled]))
        return books

    def _prepare(self) -> None:
        for ext in self.strategy.model_extensions():
            self.model.attach(ext)
        missing = set(self.strategy.requires) - self.model.provides()
        if missing:
            raise InvalidParameterError(
                f"strategy {self.strategy.name!r} needs model outputs {sorted(missing)} that this model does not provide "
                f"(it provides {sorted(self.model.provides())})"
            )

    def step(self, cycle: int) -> CycleRecord:
        """One cycle: train, evaluate, and (unless last) select and query."""
        pools = self.pools
        pools.cycle = cycle
        fit = self.trainer.fit(self.model, pools, cycle=cycle)
        metrics = {"train_loss": fit["train_loss"]}
        if self.test is not None:
            metrics.update(evaluate(self.model, self.test[0], self.test[1]))
        record = CycleRecord(cycle=cycle, n_labeled=pools.n_labeled, interactions=pools.n_interactions, cost=pools.total_cost, metrics=metrics, train_seconds=fit["train_seconds"])
        record.extra.update(open_set_books(pools))
        if cycle < self.cycles - 1 and pools.n_unlabeled > 0:
            start, chosen_all, calls, entries = time.perf_counter(), [], 0, []
            target = pools.n_labeled + self.budget
            want = self.budget
            while want > 0 and pools.n_unlabeled > 0:
                with warnings.catch_warnings():
                    warnings.simplefilter("always")
                    selection = self.strategy.select(self.model, pools, want)
                chosen = validate_selection(selection, pools, want)
                chosen_all.extend((chosen.all_indices if isinstance(chosen, Query) else chosen).tolist())
                record.selected = list(chosen_all)
                entries.extend(self._ask(record, cycle, chosen))
                calls += 1
                if self.mode != "quota" or (self.max_select_calls is not None and calls >= self.max_select_calls):
                    break
                want = target - pools.n_labeled
            record.select_seconds = time.perf_counter() - start
            record.selected = chosen_all
            record.extra.update({"select_calls": calls, "examined_this_cycle": len(chosen_all)})
            record.extra.update(self._cluster_books(entries))
        return record

    def _ask(self, record: CycleRecord, cycle: int, chosen: np.ndarray | Query | None = None) -> list[Annotation]:
        """Query ``chosen`` (default, on resume: what of ``record.selected`` is still
        unexamined), checkpointing before and after; returns the log entries."""
        self._pending_record = record
        try:
            self._save("selected", pending=record, answered=False)
            if chosen is None:
                asked = np.asarray(record.selected, dtype=np.int64)
                chosen = asked[self.pools.unlabeled_mask[asked]] if asked.size else asked
            return self.query(chosen, cycle + 1)
        finally:
            self._pending_record = None

    # ------------------------------------------------------------ checkpoints
    def identity(self) -> dict[str, Any]:
        """What a checkpoint must agree with to be loaded into this loop."""
        return {
            "strategy": self.strategy.name or type(self.strategy).__name__,
            "strategy_params": ckpt._plain(
                {k: v for k, v in self.strategy.get_params().items() if isinstance(v, (int, float, str, bool, type(None)))}
            ),
            "seed": self.seed,
            "budget": self.budget,
            "cycles": self.cycles,
            "pool_size": self.pools.n,
            "initial": self.initial.tolist(),
        }

    def _save_history(self) -> None:
        assert self.out_dir is not None
        self.history.save_json(self.out_dir / "history.json")
        self.history.save_csv(self.out_dir / "history.csv")

    def _save(self, stage: str, **kwargs: Any) -> None:
        if self.checkpoint and self.out_dir is not None:
            dist_helpers.on_main_process(ckpt.save_checkpoint, self, stage, **kwargs)

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
        folder = Path(out_dir) if out_dir is not None else self.out_dir
        if folder is None:
            raise CheckpointError("restore() needs the run's folder: pass out_dir or build the loop with out_dir=")
        state = ckpt.load_checkpoint(folder) if state is None else state
        self._prepare()
        self._resume_pending = ckpt.restore_checkpoint(self, state)
        if self.out_dir is None:  # keep checkpointing where the run was
            self.out_dir = folder
        if self.recipe is None and state.get("recipe") is not None:
            self.recipe = state["recipe"]
        return self

    @classmethod
    def resume(cls, out_dir: str | Path, **overrides: Any) -> "ActiveLoop":
        """Rebuild a checkpointed run from its saved recipe and load its state.

        ``ActiveLoop.resume(out_dir).run()`` finishes an interrupted run.
        ``overrides`` replace recipe entries (e.g. ``progress=False``,
        ``device="cpu"``).  Loops built by hand have no recipe: rebuild them
        and call :meth:`restore` instead.
        """
        state = ckpt.load_checkpoint(out_dir)
        recipe = state.get("recipe")
        if not recipe:
            raise CheckpointError(
                f"the checkpoint in {out_dir} has no recipe (the loop was built by hand); "
                "build the loop the same way and call loop.restore(out_dir)"
            )
        from .experiment import loop_from_recipe  # the experiment module imports this one

        loop = loop_from_recipe(recipe, out_dir=str(out_dir), **overrides)
        return loop.restore(out_dir, state=state)

    def run(self) -> History:
        """Run every remaining cycle and return the History."""
        deterministic = self.deterministic if self.deterministic is not None else self.model.device.type == "cpu"
        with deterministic_mode(deterministic):
            return self._run()

    def _run(self) -> History:
        self._prepare()
        if self.pools.n_labeled == 0 and self.pools.n_rejected == 0 and self.initial.size:
            self._save("initial")
            self.query(self.initial, 0)
        if self.pools.n_labeled == 0:
            raise InvalidInputError("no labeled samples to start from: pass initial=<int or indices> or label some first")
        start = len(self.history)
        cycles: Any = range(start, self.cycles)  # a tqdm bar over it when show
        show = self.progress and dist_helpers.is_main_process()  # one bar, not one per rank
        if show:
            from tqdm.auto import tqdm

            cycles = tqdm(cycles, desc=f"{self.history.meta['strategy']}", leave=False)
        for cycle in cycles:
            pending, self._resume_pending = self._resume_pending, None
            if pending is not None:  # resumed inside this cycle: its selection is saved
                record = pending["record"]
                self.pools.cycle = cycle
                if not pending["answered"]:
                    self._ask(record, cycle)
            else:
                record = self.step(cycle)
            self.history.append(record)
            if show and "accuracy" in record.metrics:
                cycles.set_postfix(acc=f"{record.metrics['accuracy']:.3f}", labeled=record.n_labeled)
            for cb in self.callbacks:  # before saving, so what callbacks add to record.extra is saved
                cb(self, record)
            if self.out_dir is not None:
                dist_helpers.on_main_process(self._save_history)
            self._save("cycle")
        return self.history
