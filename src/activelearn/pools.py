"""Index bookkeeping over one dataset: who is labeled, with what, and at what cost.

``Pools`` is the only place where the oracle's answers live.  Strategies see the
inputs of every sample (``pools.inputs(indices)``) but the labels of labeled
samples only: there is no API that returns the label of an unlabeled sample, and
the ground truth is held by the oracle, never by the pools.
"""

from __future__ import annotations

import itertools
import numbers
from dataclasses import asdict, dataclass
from collections.abc import Iterator
from typing import Any, Literal, Sequence

import numpy as np
import torch

from ._validation import Interval, Options, as_index_array, as_integral_indices, as_pool_inputs, check_params
from .dataio import EVAL_SEED, iter_batches, read_items
from .exceptions import CheckpointError, InvalidInputError

__all__ = ["Answer", "Annotation", "Pools", "DECLINED"]

#: index of an answer (and log entry) that records an interaction labeling no sample
DECLINED = -1

Source = Literal["sample", "cluster"]

_UNLABELED, _LABELED, _REJECTED = 0, 1, 2
_pool_ids = itertools.count()
_POOL_CONSTRAINTS: dict[str, list[Any]] = {
    "task": [Options(("classification", "regression"))],
    "num_classes": [Interval(numbers.Integral, 1), None],
    "num_workers": [Interval(numbers.Integral, 0, closed="left")],
}


@dataclass(frozen=True)
class Answer:
    """One answer of an oracle about one sample.

    Attributes
    ----------
    index : int
        Pool index the answer is about, or ``-1`` (:data:`DECLINED`) for an
        interaction that labeled nobody (e.g. an expert who declines to label a
        proposed cluster): it is logged, counted as an interaction and its cost
        is charged, but no sample changes state.
    label : int, float, sequence of float, or None
        The label given; ``None`` when the annotator declined (``in_task`` False,
        or a declined cluster).  Classification: a class index (an ``int``; a
        float with an integral value such as ``2.0`` is read as that int; a
        non-integral float such as ``0.3`` or a bool is refused, never rounded).
        Regression: a finite number, or for a multi-output task a sequence of
        ``d`` finite numbers (stored as a tuple); bools are refused.
    in_task : bool
        False when the annotator says the sample is not in the task (ambiguous or
        out-of-distribution): it leaves the unlabeled pool but is not trained on.
    cost : float
        What this answer cost (charged once per answer).
    source : {"sample", "cluster"}
        Whether the label was given for the sample itself or for a whole cluster.
    interaction : int
        Id of the human interaction that produced the answer; the answers of one
        cluster share one interaction. ``-1`` lets the pools assign a fresh id.
    """

    index: int
    label: int | float | tuple[float, ...] | None
    in_task: bool = True
    cost: float = 1.0
    source: Source = "sample"
    interaction: int = -1


@dataclass(frozen=True)
class Annotation:
    """An entry of the append-only annotation log.

    ``index == -1`` (:data:`DECLINED`) records an interaction that labeled
    nobody (a declined cluster); ``source="cluster"`` marks labels given to a
    whole cluster, and entries sharing ``interaction`` were one interaction.
    """

    cycle: int
    index: int
    label: int | float | tuple[float, ...] | None
    in_task: bool
    cost: float
    source: Source
    interaction: int

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON-friendly)."""
        return asdict(self)


class Pools:
    """Labeled / unlabeled / rejected bookkeeping over one dataset of ``n`` samples.

    Parameters
    ----------
    inputs : torch.Tensor or torch.utils.data.Dataset
        The model inputs of every sample (a tensor ``N x ...`` is the fast path; a
        Dataset whose items are inputs, or ``(input, ...)`` tuples of which only
        the input is used, also works).  No targets are stored here.
    task : {"classification", "regression"}
        Decides the dtype of stored labels.
    num_classes : int, optional
        Classes of the task, used to validate labels given by an oracle.
    num_workers : int
        Worker processes reading a Dataset pool (a :class:`torch.utils.data.DataLoader`
        per read of more than one batch and per training epoch; 0 reads in this
        process).  Ignored for a tensor pool.
    pin_memory : bool
        Page-locked batches from a Dataset pool (faster copies to a GPU).
    dtype : torch.dtype or None
        Array and tensor inputs are converted to it up front (default float32;
        ``None`` keeps theirs); NaN/Inf, 1-D inputs and values beyond float32
        are refused (:func:`activelearn._validation.as_pool_inputs`).  A Dataset
        is used as given.

    Notes
    -----
    ``cycle`` is set by the loop; strategies may read it (e.g. to seed
    per-cycle randomness).

    A Dataset's random augmentations are reproducible (:mod:`activelearn.dataio`):
    :meth:`inputs` reads every item under one fixed seed (scoring is
    deterministic), :meth:`batches` under the seed it is given (the trainer
    passes one per epoch).
    """

    def __init__(
        self,
        inputs: torch.Tensor | torch.utils.data.Dataset,
        *,
        task: Literal["classification", "regression"] = "classification",
        num_classes: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        dtype: torch.dtype | None = torch.float32,
    ) -> None:
        check_params({"task": task, "num_classes": num_classes, "num_workers": num_workers}, _POOL_CONSTRAINTS)
        if isinstance(inputs, (torch.Tensor, np.ndarray)):
            inputs = as_pool_inputs(inputs, dtype=dtype)
        n = len(inputs)  # type: ignore[arg-type]
        if n == 0:
            raise InvalidInputError("the pool is empty; pass at least one sample")
        self._inputs = inputs
        self.num_workers = num_workers
        self.pin_memory = bool(pin_memory)
        self.task = task
        self.num_classes = num_classes
        self.n = int(n)
        self.uid = next(_pool_ids)
        self.cycle = 0
        self._status = np.zeros(self.n, dtype=np.int8)
        self._labels = np.zeros(self.n, dtype=np.int64 if task == "classification" else np.float64)
        self._label_width: int | None = None  # 0: scalar labels, d: d-output regression labels; None: none stored yet
        self._log: list[Annotation] = []
        self._next_interaction = 0

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return (
            f"Pools(n={self.n}, labeled={self.n_labeled}, unlabeled={self.n_unlabeled}, "
            f"rejected={self.n_rejected}, interactions={self.n_interactions})"
        )

    @property
    def labeled(self) -> np.ndarray:
        """Sorted indices of samples with an in-task label."""
        return np.flatnonzero(self._status == _LABELED)

    @property
    def unlabeled(self) -> np.ndarray:
        """Sorted indices of samples nobody has examined yet."""
        return np.flatnonzero(self._status == _UNLABELED)

    @property
    def rejected(self) -> np.ndarray:
        """Sorted indices of samples examined and found not in the task."""
        return np.flatnonzero(self._status == _REJECTED)

    @property
    def labeled_mask(self) -> np.ndarray:
        """Boolean mask (length n) of labeled samples."""
        return self._status == _LABELED

    @property
    def unlabeled_mask(self) -> np.ndarray:
        """Boolean mask (length n) of unlabeled samples."""
        return self._status == _UNLABELED

    @property
    def n_labeled(self) -> int:
        return int((self._status == _LABELED).sum())

    @property
    def n_unlabeled(self) -> int:
        return int((self._status == _UNLABELED).sum())

    @property
    def n_rejected(self) -> int:
        return int((self._status == _REJECTED).sum())

    @property
    def labels(self) -> np.ndarray:
        """Labels of ``self.labeled`` in the same order (as the oracle gave them)."""
        return self._labels[self.labeled].copy()

    def labels_of(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Labels of the given labeled samples; raises for any sample that is not labeled."""
        idx = as_index_array(indices, "indices", n=self.n) if len(indices) else np.zeros(0, np.int64)
        not_labeled = idx[self._status[idx] != _LABELED]
        if not_labeled.size:
            raise InvalidInputError(
                f"labels requested for {not_labeled.size} sample(s) that are not labeled "
                f"(e.g. index {int(not_labeled[0])}); only the oracle knows those"
            )
        return self._labels[idx].copy()

    @property
    def log(self) -> tuple[Annotation, ...]:
        """The append-only annotation log (a read-only snapshot)."""
        return tuple(self._log)

    @property
    def n_interactions(self) -> int:
        """Number of distinct human interactions so far."""
        return self._next_interaction

    @property
    def n_declined(self) -> int:
        """Interactions that labeled nobody (declined clusters)."""
        return sum(1 for a in self._log if a.index == DECLINED)

    @property
    def total_cost(self) -> float:
        """Sum of the cost of every answer so far."""
        return float(sum(a.cost for a in self._log))

    def inputs(self, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Stack the model inputs of ``indices`` into one tensor (any sample may be read)."""
        idx = as_integral_indices(indices, "indices")
        if idx.size and (idx.min() < 0 or idx.max() >= self.n):
            raise InvalidInputError(f"indices must lie in [0, {self.n}), got {idx.min()}..{idx.max()}")
        if isinstance(self._inputs, torch.Tensor):
            return self._inputs[torch.from_numpy(idx)]
        return read_items(self._inputs, idx, num_workers=self.num_workers, pin_memory=self.pin_memory)

    def batches(self, index_batches: Sequence[np.ndarray], *, seed: int = EVAL_SEED) -> Iterator[torch.Tensor]:
        """The inputs of each index batch, in order; ``seed`` seeds a Dataset's own augmentations (:mod:`activelearn.dataio`)."""
        if isinstance(self._inputs, torch.Tensor):
            return (self._inputs[torch.from_numpy(np.ascontiguousarray(b, dtype=np.int64))] for b in index_batches)
        return iter_batches(self._inputs, index_batches, seed=seed, num_workers=self.num_workers, pin_memory=self.pin_memory)

    # ---------------------------------------------------------------- updates
    def record(self, answers: Sequence[Answer], *, cycle: int | None = None) -> list[Annotation]:
        """Apply the oracle's answers and append them to the log.

        All answers are validated before any state changes: each index must be
        in range and currently unlabeled, appear once, and an in-task answer
        must carry a valid label.

        Returns the log entries that were appended.
        """
        cycle = self.cycle if cycle is None else int(cycle)
        if not answers:
            return []
        labels = self._validate(answers)
        remap: dict[int, int] = {}  # the answers' shared interaction ids -> fresh ids of these pools
        entries = [self._apply(a, label, cycle, remap) for a, label in zip(answers, labels)]
        self._log.extend(entries)
        return entries

    def _validate(self, answers: Sequence[Answer]) -> list[Any]:
        """Check every answer (nothing changes on failure); return the labels, normalised."""
        _check_indices(answers, self._status)
        return _clean_answers(answers, self.task, self.num_classes, self._label_width)

    def _apply(self, a: Answer, label: Any, cycle: int, remap: dict[int, int]) -> Annotation:
        """Change the state for one validated answer; return its log entry."""
        inter = remap.get(a.interaction, self._next_interaction) if a.interaction >= 0 else self._next_interaction
        if inter == self._next_interaction:  # a new interaction (shared ids map to the first one's)
            self._next_interaction += 1
            if a.interaction >= 0:
                remap[a.interaction] = inter
        if a.index != DECLINED and a.in_task:
            self._status[a.index] = _LABELED
            self._store_label(a.index, label)
        elif a.index != DECLINED:
            self._status[a.index] = _REJECTED
        return Annotation(cycle, int(a.index), label, bool(a.in_task), float(a.cost), a.source, inter)

    def _store_label(self, index: int, label: Any) -> None:
        """Write one checked label; the first one fixes the label width (d-output regression: an ``n x d`` array)."""
        width = len(label) if isinstance(label, tuple) else 0
        if self._label_width is None:
            self._label_width = width
            self._labels = np.zeros((self.n, width) if width else self.n, dtype=self._labels.dtype)
        self._labels[index] = label

    # ----------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild the books (not the inputs)."""
        return {
            "n": self.n,
            "task": self.task,
            "num_classes": self.num_classes,
            "cycle": self.cycle,
            "log": [a.to_dict() for a in self._log],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replay a saved log onto fresh pools over the same inputs.

        The whole state is read and checked before the pools change.

        Raises
        ------
        InvalidInputError
            The saved pools are over another number of samples.
        CheckpointError
            The state is damaged (missing keys, malformed log entries, indices
            out of range).
        """
        cycle, log = _parse_state(state, self.n)
        self._status[:] = _UNLABELED
        self._label_width = None
        self._log.clear()
        self._next_interaction = 0
        for a in log:
            if a.index != DECLINED:
                self._status[a.index] = _LABELED if a.in_task else _REJECTED
                if a.in_task:
                    self._store_label(a.index, tuple(a.label) if isinstance(a.label, (list, tuple)) else a.label)
            self._log.append(a)
            self._next_interaction = max(self._next_interaction, a.interaction + 1)
        self.cycle = cycle


def _clean_label(a: Answer, task: str, num_classes: int | None) -> int | float | tuple[float, ...]:
    """The label of an in-task answer as stored: an int class, a float, or a tuple of floats.

    Classification takes ints, and floats with an integral value (``2.0 -> 2``);
    it refuses non-integral floats (``0.3`` is never rounded to 0) and bools
    (``True`` is more likely a mask or flag than class 1).  Regression takes a
    finite number or a 1-D sequence of finite numbers (multi-output), never a bool.
    """
    if a.label is None:
        raise InvalidInputError(f"in-task answer for index {a.index} has no label")
    what = f"label {a.label!r} for index {a.index}"
    try:
        arr = np.asarray(a.label)
    except (TypeError, ValueError) as exc:  # ragged sequences
        raise InvalidInputError(f"{what} is not a number or a flat sequence of numbers ({exc})") from None
    if arr.dtype.kind == "b":
        raise InvalidInputError(f"{what} is a bool; give a class index as an int (int(label)) or a real target as a float")
    if arr.dtype.kind not in "iuf":
        raise InvalidInputError(f"{what} is not a number (dtype {arr.dtype}); give an int class index or a float target")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InvalidInputError(f"{what} is NaN or infinite; give a finite label")
    if task == "classification":
        return _class_label(arr, what, type(a.label).__name__, num_classes)
    if arr.ndim == 0:
        return float(arr)
    if arr.ndim != 1 or arr.size == 0:
        raise InvalidInputError(f"{what}: a regression label is a number or a 1-D sequence of d numbers, got shape {arr.shape}")
    return tuple(float(v) for v in arr)


def _class_label(arr: np.ndarray, what: str, kind: str, num_classes: int | None) -> int:
    """A class index from a checked numeric label: integral values only, inside ``0 .. num_classes - 1``."""
    if arr.ndim != 0 or (arr.dtype.kind == "f" and arr != np.round(arr)):
        raise InvalidInputError(
            f"{what}: classification needs an integer class index, got {kind}; "
            "give integer labels, or build the pools (and model, dataset) with task='regression' for real-valued targets"
        )
    value = int(arr)
    if num_classes is not None and not 0 <= value < num_classes:
        raise InvalidInputError(f"{what} is outside 0..{num_classes - 1}")
    return value


def _check_label_widths(labels: list[Any], width: int | None) -> None:
    """Refuse a mix of scalar and vector labels, or vectors of other lengths, across all answers so far."""
    widths = {len(v) if isinstance(v, tuple) else 0 for v in labels if v is not None}
    if width is not None:
        widths.add(width)
    if len(widths) > 1:
        shown = ", ".join("scalars" if w == 0 else f"{w}-vectors" for w in sorted(widths))
        raise InvalidInputError(f"labels must all have one shape (a scalar, or d outputs for every sample); got {shown}")


def _check_indices(answers: Sequence[Answer], status: np.ndarray) -> None:
    """Declined interactions label nobody; indices integral, in range, once each, and not examined before."""
    n = status.size
    for a in answers:
        if a.index == DECLINED and (a.in_task or a.label is not None):
            raise InvalidInputError("a declined interaction (index -1) labels nobody: give it label=None, in_task=False")
    idx = as_integral_indices([a.index for a in answers], "answer indices")
    idx = idx[idx != DECLINED]
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise InvalidInputError(f"answer indices must lie in [0, {n}) (or -1 for a declined interaction), got {idx.min()}..{idx.max()}")
    if np.unique(idx).size != idx.size:
        raise InvalidInputError("answers hold the same index twice; each sample is answered once")
    seen = idx[status[idx] != _UNLABELED]
    if seen.size:
        raise InvalidInputError(
            f"answers given for {seen.size} sample(s) already examined (e.g. index {int(seen[0])}); "
            "a sample is never queried twice"
        )


def _clean_answers(answers: Sequence[Answer], task: str, num_classes: int | None, width: int | None) -> list[Any]:
    """Costs finite and >= 0; in-task labels as stored (see :func:`_clean_label`), all of one width."""
    for a in answers:
        if isinstance(a.cost, bool) or not isinstance(a.cost, numbers.Real) or not np.isfinite(a.cost) or a.cost < 0:
            raise InvalidInputError(f"answer cost must be a finite number >= 0, got {a.cost!r}")
    clean = [_clean_label(a, task, num_classes) if a.in_task and a.index != DECLINED else a.label for a in answers]
    _check_label_widths(clean, width)
    return clean


def _parse_state(state: dict[str, Any], n: int) -> tuple[int, list[Annotation]]:
    """The cycle and log of a saved :meth:`Pools.state_dict`, checked against pools of ``n`` samples."""
    try:
        saved_n, cycle = int(state["n"]), int(state["cycle"])
        log = [Annotation(**entry) for entry in state["log"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"the saved pools are damaged ({type(exc).__name__}: {exc}); the checkpoint cannot be loaded") from exc
    if saved_n != n:
        raise InvalidInputError(f"saved pools have n={saved_n}, these have n={n}")
    bad = [a.index for a in log if not (a.index == DECLINED or 0 <= a.index < n)]
    if bad:
        raise CheckpointError(f"the saved pools' log names indices outside [0, {n}), e.g. {bad[:3]}; the checkpoint is damaged")
    return cycle, log
