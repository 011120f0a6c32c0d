"""The active-learning loop: train -> evaluate -> select -> query -> update, per cycle."""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ._validation import as_index_array, check_nonnegative_int, check_positive_int
from .exceptions import InvalidInputError, InvalidParameterError, OracleError, SelectionError
from .history import CycleRecord, History
from .model import ALModel
from .oracle import Oracle, Query
from .pools import DECLINED, Annotation, Pools
from .strategies.base import Strategy
from .trainer import Trainer, evaluate

__all__ = ["ActiveLoop", "validate_selection"]


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
        Where ``history.json`` and ``history.csv`` are written after every cycle.
    callbacks : list of callables
        Called as ``cb(loop, record)`` after every cycle.
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
    ) -> None:
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
        self.seed = int(seed)
        self.progress = progress
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.callbacks = list(callbacks)
        self.initial = self._initial_indices(initial)
        self.history = History(meta={
            "strategy": strategy.name or type(strategy).__name__,
            "strategy_params": {k: v for k, v in strategy.get_params().items() if isinstance(v, (int, float, str, bool, type(None)))},
            "budget": self.budget,
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
        answers = self.oracle.answer(query)
        asked = set(query.all_indices.tolist())
        answered = {a.index for a in answers if a.index != DECLINED}
        if answered - asked:
            raise OracleError(f"the oracle answered about indices it was not asked: {sorted(answered - asked)[:5]}")
        if set(np.asarray(query.indices).tolist()) - answered:
            raise OracleError(f"the oracle left {len(set(np.asarray(query.indices).tolist()) - answered)} queried sample(s) unanswered")
        return self.pools.record(answers, cycle=cycle)

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
        if cycle < self.cycles - 1 and pools.n_unlabeled > 0:
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                selection = self.strategy.select(self.model, pools, self.budget)
            record.select_seconds = time.perf_counter() - start
            chosen = validate_selection(selection, pools, self.budget)
            entries = self.query(chosen, cycle + 1)
            record.selected = (chosen.all_indices if isinstance(chosen, Query) else chosen).tolist()
            record.extra.update(self._cluster_books(entries))
        return record

    def run(self) -> History:
        """Run every remaining cycle and return the History."""
        self._prepare()
        if self.pools.n_labeled == 0 and self.initial.size:
            self.query(self.initial, 0)
        if self.pools.n_labeled == 0:
            raise InvalidInputError("no labeled samples to start from: pass initial=<int or indices> or label some first")
        start = len(self.history)
        cycles = range(start, self.cycles)
        if self.progress:
            from tqdm.auto import tqdm

            cycles = tqdm(cycles, desc=f"{self.history.meta['strategy']}", leave=False)
        for cycle in cycles:
            record = self.step(cycle)
            self.history.append(record)
            if self.progress and "accuracy" in record.metrics:
                cycles.set_postfix(acc=f"{record.metrics['accuracy']:.3f}", labeled=record.n_labeled)  # type: ignore[union-attr]
            if self.out_dir is not None:
                self.history.save_json(self.out_dir / "history.json")
                self.history.save_csv(self.out_dir / "history.csv")
            for cb in self.callbacks:
                cb(self, record)
        return self.history
