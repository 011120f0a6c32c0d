"""Oracles: who answers queries.  The simulated one holds the hidden ground truth.

The loop hands an oracle a :class:`Query` and records the :class:`~activelearn.pools.Answer`
objects it returns.  A query is a set of pool indices plus, optionally, groups
(clusters) of indices to be labeled as a whole; an answer may say "not in task"
(``in_task=False``) and every answer carries its cost.  New kinds of annotators
(open-set, cluster labels, a human behind files) implement the same protocol, so
the loop never changes.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from ._validation import Interval, as_integral_indices, check_params
from .exceptions import InvalidInputError, InvalidParameterError, OracleError
from .pools import DECLINED, Answer

__all__ = ["Query", "Oracle", "StatefulOracle", "SimulatedOracle"]


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

    def __post_init__(self) -> None:
        """Indices become int64 arrays; float indices must be integral (never truncated)."""
        object.__setattr__(self, "indices", as_integral_indices(self.indices, "query indices"))
        object.__setattr__(self, "groups", tuple(as_integral_indices(np.asarray(g).reshape(-1), "a query group") for g in self.groups))

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


@runtime_checkable
class StatefulOracle(Oracle, Protocol):
    """An :class:`Oracle` with state a checkpoint saves and restores (e.g. answers read so far)."""

    def state_dict(self) -> dict[str, object]:
        """The oracle's state as plain data (what :meth:`load_state_dict` takes back)."""
        ...

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore the state :meth:`state_dict` returned."""
        ...


def _checked_targets(targets: np.ndarray | torch.Tensor | Sequence[float], num_classes: int | None) -> np.ndarray:
    """Targets as a numpy array, refused when they are not ``(N,)`` or ``(N, d)`` finite real numbers."""
    t = targets.detach().cpu().numpy() if isinstance(targets, torch.Tensor) else np.asarray(targets)
    if t.ndim not in (1, 2) or (t.ndim == 2 and (t.dtype.kind != "f" or num_classes is not None)):
        raise InvalidInputError(
            f"targets must be 1-D (one per sample), or (N, d) floats for a d-output regression task, got shape {t.shape} "
            f"(dtype {t.dtype}{', with num_classes' if num_classes is not None else ''})"
        )
    if t.dtype.kind == "b":
        raise InvalidInputError("targets are bools; pass class indices (targets.astype(int)) or real-valued targets (floats)")
    if t.dtype.kind not in "iuf":
        raise InvalidInputError(f"targets must be numbers, got dtype {t.dtype}")
    if t.dtype.kind == "f" and not np.isfinite(t).all():
        raise InvalidInputError("targets hold NaN or Inf; clean them first")
    if num_classes is not None and t.size and not _class_indices(t, num_classes):
        raise InvalidInputError(f"targets must be class indices in 0..{num_classes - 1}, got values {t.min()}..{t.max()}")
    return t


def _class_indices(t: np.ndarray, num_classes: int) -> bool:
    """Whether every target is an integral value in ``0 .. num_classes - 1``."""
    return bool(t.min() >= 0 and t.max() < num_classes and (t.dtype.kind != "f" or (t == np.round(t)).all()))


class SimulatedOracle:
    """An oracle over hidden ground truth, optionally noisy, with per-sample costs.

    Parameters
    ----------
    targets : array-like
        The true label (or regression target) of every pool sample: shape
        ``(N,)``, or ``(N, d)`` floats for a ``d``-output regression task.
        Bool targets are refused (convert them to class indices with
        ``targets.astype(int)``); with ``num_classes`` the targets must be
        class indices (floats with integral values are accepted as such).
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
    cluster_threshold : float
        Cluster queries (``Query.groups``): the simulated expert labels a whole
        cluster with its modal true class when that class makes up at least this
        fraction of the cluster's members (all unlabeled: the loop checks it), and
        declines otherwise (Perez, Lebret & Aberer; default 0.8).  Members that are
        not in the task count against the modal class.
    cluster_cost : float
        Cost of one cluster interaction, accepted or declined (charged once, on
        the first answer of the cluster; the other members' answers cost 0).

    Notes
    -----
    An accepted cluster yields one ``Answer`` per member with the modal label,
    ``source="cluster"`` and a shared ``interaction`` id, so the pools count one
    interaction.  A declined cluster yields a single ``Answer(index=-1,
    label=None, in_task=False, source="cluster")``: the pools count and charge
    the interaction and label nobody.
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
        cluster_threshold: float = 0.8,
        cluster_cost: float = 1.0,
    ) -> None:
        check_params(
            {"num_classes": num_classes, "noise_rate": noise_rate, "seed": seed, "cluster_threshold": cluster_threshold, "cluster_cost": cluster_cost},
            _ORACLE_CONSTRAINTS,
        )
        t = _checked_targets(targets, num_classes)
        if noise_rate > 0 and (num_classes is None or num_classes < 2):
            raise InvalidParameterError("noise_rate > 0 needs num_classes >= 2 to draw a wrong label")
        self.targets = t
        self.num_classes = num_classes
        self.noise_rate = float(noise_rate)
        self.cost = _per_sample("cost", cost, t.shape[:1], dtype=np.float64)
        self.in_task = np.ones(t.shape[:1], dtype=bool) if in_task is None else _per_sample("in_task", in_task, t.shape[:1], dtype=bool)
        self.seed = int(seed)
        self.cluster_threshold = float(cluster_threshold)
        self.cluster_cost = float(cluster_cost)
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

    def _label(self, i: int) -> int | float | tuple[float, ...]:
        y = self.targets[i]
        if y.ndim:  # a multi-output regression target
            return tuple(float(v) for v in y)
        if self.noise_rate == 0.0 or self.num_classes is None:
            return y.item()
        rng = np.random.default_rng([self.seed, i])
        if rng.random() >= self.noise_rate:
            return int(y)
        wrong = int(rng.integers(self.num_classes - 1))
        return wrong + 1 if wrong >= int(y) else wrong

    def _check_indices(self, idx: np.ndarray) -> None:
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise OracleError(f"query indices must lie in [0, {len(self)}), got {idx.min()}..{idx.max()}")

    def answer(self, query: Query) -> list[Answer]:
        """Answer every index of the query, and every cluster by the threshold rule."""
        idx = as_integral_indices(query.indices, "query indices")
        self._check_indices(idx)
        groups = [as_integral_indices(np.asarray(g).reshape(-1), "a query group") for g in query.groups]
        for g in groups:
            if g.size == 0:
                raise OracleError("a cluster of the query is empty; every group needs at least one member")
            self._check_indices(g)
        if groups and self.task_kind() != "classification":
            raise OracleError("cluster labels need a classification task (integer targets)")
        self.n_queries += 1
        self.asked.extend(int(i) for i in idx)
        out = []
        for i in idx:
            i = int(i)
            if self.in_task[i]:
                out.append(Answer(i, self._label(i), True, float(self.cost[i]), "sample"))
            else:
                out.append(Answer(i, None, False, float(self.cost[i]), "sample"))
        for gid, g in enumerate(groups):
            out.extend(self.answer_cluster(g, interaction=gid))
        return out

    def task_kind(self) -> str:
        """``"classification"`` for integer targets, else ``"regression"``."""
        return "classification" if self.targets.dtype.kind in "iub" else "regression"

    def answer_cluster(self, members: np.ndarray, *, interaction: int = 0) -> list[Answer]:
        """The expert's verdict on one cluster (all members assumed unlabeled).

        Returns one ``Answer`` per member with the modal class when that class is
        at least ``cluster_threshold`` of the members, else one declined answer
        (index -1).  Either way the answers share ``interaction`` and the first
        carries ``cluster_cost``.
        """
        members = np.asarray(members, dtype=np.int64).reshape(-1)
        self.asked.extend(int(i) for i in members)
        truth = self.targets[members].astype(np.int64)
        valid = self.in_task[members]
        counts = np.bincount(truth[valid], minlength=1) if valid.any() else np.zeros(1, np.int64)
        modal = int(counts.argmax())
        # exact rational comparison: count >= threshold * size, without float rounding at the boundary
        accepted = bool(valid.any()) and counts[modal] >= self.cluster_threshold * members.size - 1e-9
        if not accepted:
            return [Answer(DECLINED, None, False, self.cluster_cost, "cluster", interaction)]
        return [
            Answer(int(i), modal, True, self.cluster_cost if k == 0 else 0.0, "cluster", interaction)
            for k, i in enumerate(members)
        ]

    def audit(self, indices: np.ndarray | Sequence[int], labels: np.ndarray | Sequence[int]) -> float:
        """Fraction of ``labels`` equal to the true targets of ``indices`` (NaN if empty).

        The loop uses it to report the true accuracy of cluster labels in the
        History; strategies never call it.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            return float("nan")
        self._check_indices(idx)
        lab = np.asarray(labels).reshape(-1)
        if lab.shape != idx.shape:
            raise InvalidInputError(f"audit needs one label per index, got {lab.size} labels for {idx.size} indices")
        return float(np.mean(self.targets[idx] == lab))


_ORACLE_CONSTRAINTS: dict[str, list[Any]] = {
    "num_classes": [Interval(numbers.Integral, 1), None],
    "noise_rate": [Interval(numbers.Real, 0.0, 1.0)],
    "seed": [Interval(numbers.Integral, 0)],
    "cluster_threshold": [Interval(numbers.Real, 0.0, 1.0)],
    "cluster_cost": [Interval(numbers.Real, 0)],
}


def _per_sample(name: str, value: object, shape: tuple[int, ...], *, dtype: type) -> np.ndarray:
    """One value for every sample (a scalar is broadcast), checked: costs finite and >= 0, flags booleans."""
    arr = np.asarray(value)
    if dtype is bool:
        if arr.dtype != bool or arr.shape != shape:
            raise InvalidInputError(f"in_task must be a boolean array of shape {shape}, got dtype {arr.dtype} shape {arr.shape}")
        return arr.copy()
    if arr.dtype.kind not in "iuf" or (arr.ndim and arr.shape != shape):
        raise InvalidParameterError(f"{name} must be one number or one per sample (shape {shape}), got dtype {arr.dtype} shape {arr.shape}")
    out = np.broadcast_to(arr.astype(np.float64), shape).copy()
    if not np.isfinite(out).all() or (out < 0).any():
        raise InvalidParameterError(f"{name} must be finite and >= 0 (one number or one per sample)")
    return out
