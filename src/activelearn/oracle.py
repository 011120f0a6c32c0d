"""Oracles: who answers queries.  The simulated one holds the hidden ground truth.

The loop hands an oracle a :class:`Query` and records the :class:`~activelearn.pools.Answer`
objects it returns.  A query is a set of pool indices plus, optionally, groups
(clusters) of indices to be labeled as a whole; an answer may say "not in task"
(``in_task=False``) and every answer carries its cost.  New kinds of annotators
(open-set, cluster labels, a human behind files) implement the same protocol, so
the loop never changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from ._validation import check_fraction
from .exceptions import InvalidInputError, InvalidParameterError, OracleError
from .pools import Answer

__all__ = ["Query", "Oracle", "SimulatedOracle"]


@dataclass(frozen=True)
class Query:
    """What the loop asks the oracle.

    Attributes
    ----------
    indices : np.ndarray
        Samples to be labeled one by one (one interaction each).
    groups : tuple of np.ndarray
        Clusters to be labeled as a whole (one interaction each).  Empty for
        ordinary sample queries.
    cycle : int
        The cycle the query belongs to.
    """

    indices: np.ndarray
    groups: tuple[np.ndarray, ...] = field(default=())
    cycle: int = 0

    @property
    def all_indices(self) -> np.ndarray:
        """Every pool index the query touches."""
        parts = [np.asarray(self.indices, dtype=np.int64)] + [np.asarray(g, dtype=np.int64) for g in self.groups]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


@runtime_checkable
class Oracle(Protocol):
    """Anything that answers queries about pool samples."""

    def answer(self, query: Query) -> list[Answer]:
        """Return one :class:`Answer` per sample the query asked about (or per
        cluster member labeled); answers sharing ``interaction`` count as one."""
        ...


class SimulatedOracle:
    """An oracle over hidden ground truth, optionally noisy, with per-sample costs.

    Parameters
    ----------
    targets : array-like
        The true label (or regression target) of every pool sample.
    num_classes : int, optional
        Needed for label noise (a flipped label is drawn uniformly from the
        other classes) and to validate targets.
    noise_rate : float
        Probability that an answer is wrong (classification only).  The flip of
        sample ``i`` is drawn from ``default_rng([seed, i])``, so the same sample
        always gets the same answer, whatever the order of queries.
    cost : float or array-like
        Cost of examining a sample: one number, or one per sample.
    in_task : array-like of bool, optional
        Which samples belong to the task; the others are answered "not in task"
        (label ``None``) and still cost.  Default: every sample is in the task.
    seed : int
        Seed of the label noise.
    """

    def __init__(
        self,
        targets: np.ndarray | torch.Tensor | Sequence[float],
        *,
        num_classes: int | None = None,
        noise_rate: float = 0.0,
        cost: float | np.ndarray = 1.0,
        in_task: np.ndarray | None = None,
        seed: int = 0,
    ) -> None:
        t = targets.detach().cpu().numpy() if isinstance(targets, torch.Tensor) else np.asarray(targets)
        if t.ndim != 1:
            raise InvalidInputError(f"targets must be 1-D (one per sample), got shape {t.shape}")
        if t.dtype.kind == "f" and not np.isfinite(t).all():
            raise InvalidInputError("targets hold NaN or Inf; clean them first")
        self.targets = t
        self.num_classes = num_classes
        self.noise_rate = check_fraction("noise_rate", noise_rate)
        if self.noise_rate > 0 and (num_classes is None or num_classes < 2):
            raise InvalidParameterError("noise_rate > 0 needs num_classes >= 2 to draw a wrong label")
        if num_classes is not None and t.size and t.dtype.kind in "iuf" and (t.min() < 0 or t.max() >= num_classes or (t.dtype.kind == "f" and (t != np.round(t)).any())):
            raise InvalidInputError(f"targets must be class indices in 0..{num_classes - 1}, got values {t.min()}..{t.max()}")
        c = np.broadcast_to(np.asarray(cost, dtype=np.float64), t.shape).copy()
        if not np.isfinite(c).all() or (c < 0).any():
            raise InvalidParameterError("cost must be finite and >= 0 (one number or one per sample)")
        self.cost = c
        if in_task is None:
            self.in_task = np.ones(t.shape, dtype=bool)
        else:
            self.in_task = np.asarray(in_task, dtype=bool)
            if self.in_task.shape != t.shape:
                raise InvalidInputError(f"in_task must have shape {t.shape}, got {self.in_task.shape}")
        self.seed = int(seed)
        self.n_queries = 0
        self.asked: list[int] = []

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def state_dict(self) -> dict[str, object]:
        """The bookkeeping of past queries (answers themselves depend only on the seed)."""
        return {"n_queries": self.n_queries, "asked": list(self.asked)}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore :meth:`state_dict` (used when a run resumes from a checkpoint)."""
        self.n_queries = int(state["n_queries"])  # type: ignore[call-overload]
        self.asked = [int(i) for i in state["asked"]]  # type: ignore[attr-defined]

    def _label(self, i: int) -> int | float:
        y = self.targets[i]
        if self.noise_rate == 0.0 or self.num_classes is None:
            return y.item()
        rng = np.random.default_rng([self.seed, i])
        if rng.random() >= self.noise_rate:
            return int(y)
        wrong = int(rng.integers(self.num_classes - 1))
        return wrong + 1 if wrong >= int(y) else wrong

    def answer(self, query: Query) -> list[Answer]:
        """Answer every index of the query; cluster groups need a cluster-capable oracle."""
        if len(query.groups):
            raise OracleError(
                "SimulatedOracle answers sample queries only; use an oracle that labels clusters "
                "for queries with groups"
            )
        idx = np.asarray(query.indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise OracleError(f"query indices must lie in [0, {len(self)}), got {idx.min()}..{idx.max()}")
        self.n_queries += 1
        self.asked.extend(int(i) for i in idx)
        out = []
        for i in idx:
            i = int(i)
            if self.in_task[i]:
                out.append(Answer(i, self._label(i), True, float(self.cost[i]), "sample"))
            else:
                out.append(Answer(i, None, False, float(self.cost[i]), "sample"))
        return out
