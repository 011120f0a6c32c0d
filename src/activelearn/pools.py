"""Index bookkeeping over one dataset: who is labeled, with what, and at what cost.

``Pools`` is the only place where the oracle's answers live.  Strategies see the
inputs of every sample (``pools.inputs(indices)``) but the labels of labeled
samples only: there is no API that returns the label of an unlabeled sample, and
the ground truth is held by the oracle, never by the pools.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any, Literal, Sequence

import numpy as np
import torch

from ._validation import as_index_array
from .exceptions import InvalidInputError

__all__ = ["Answer", "Annotation", "Pools", "DECLINED"]

#: index of an answer (and log entry) that records an interaction labeling no sample
DECLINED = -1

Source = Literal["sample", "cluster"]

_UNLABELED, _LABELED, _REJECTED = 0, 1, 2
_pool_ids = itertools.count()


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
    label : int | float | None
        The label given; ``None`` when the annotator declined (``in_task`` False,
        or a declined cluster).
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
    label: int | float | None
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
    label: int | float | None
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

    Notes
    -----
    ``cycle`` is set by the loop; strategies may read it (e.g. to seed
    per-cycle randomness).
    """

    def __init__(
        self,
        inputs: torch.Tensor | torch.utils.data.Dataset,
        *,
        task: Literal["classification", "regression"] = "classification",
        num_classes: int | None = None,
    ) -> None:
        if task not in ("classification", "regression"):
            raise InvalidInputError(f"task must be 'classification' or 'regression', got {task!r}")
        n = len(inputs)  # type: ignore[arg-type]
        if n == 0:
            raise InvalidInputError("the pool is empty; pass at least one sample")
        if isinstance(inputs, torch.Tensor) and inputs.is_floating_point():
            flat = inputs.reshape(-1)
            for start in range(0, flat.numel(), 1 << 22):  # bounded temporary memory
                if not bool(torch.isfinite(flat[start : start + (1 << 22)]).all()):
                    bad = int((~torch.isfinite(inputs.reshape(n, -1))).any(dim=1).sum())
                    raise InvalidInputError(f"pool inputs hold NaN or Inf in {bad} sample(s); clean or drop them first")
        self._inputs = inputs
        self.task = task
        self.num_classes = num_classes
        self.n = int(n)
        self.uid = next(_pool_ids)
        self.cycle = 0
        self._status = np.zeros(self.n, dtype=np.int8)
        self._labels = np.zeros(self.n, dtype=np.int64 if task == "classification" else np.float64)
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
        idx = np.ascontiguousarray(indices, dtype=np.int64)
        if isinstance(self._inputs, torch.Tensor):
            return self._inputs[torch.from_numpy(idx)]
        items = [self._inputs[int(i)] for i in idx]
        items = [it[0] if isinstance(it, (tuple, list)) else it for it in items]
        return torch.stack([torch.as_tensor(it) for it in items])

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
        all_idx = np.array([a.index for a in answers], dtype=np.int64)
        for a in answers:
            if a.index == DECLINED and (a.in_task or a.label is not None):
                raise InvalidInputError("a declined interaction (index -1) labels nobody: give it label=None, in_task=False")
        idx = all_idx[all_idx != DECLINED]
        if idx.size and (idx.min() < 0 or idx.max() >= self.n):
            raise InvalidInputError(f"answer indices must lie in [0, {self.n}) (or -1 for a declined interaction), got {idx.min()}..{idx.max()}")
        if np.unique(idx).size != idx.size:
            raise InvalidInputError("answers hold the same index twice; each sample is answered once")
        seen = idx[self._status[idx] != _UNLABELED]
        if seen.size:
            raise InvalidInputError(
                f"answers given for {seen.size} sample(s) already examined (e.g. index {int(seen[0])}); "
                "a sample is never queried twice"
            )
        for a in answers:
            if a.in_task and a.label is None:
                raise InvalidInputError(f"in-task answer for index {a.index} has no label")
            if a.in_task and self.task == "classification" and self.num_classes is not None:
                if not (0 <= int(a.label) < self.num_classes):  # type: ignore[arg-type]
                    raise InvalidInputError(
                        f"label {a.label!r} for index {a.index} is outside 0..{self.num_classes - 1}"
                    )
            if not np.isfinite(a.cost) or a.cost < 0:
                raise InvalidInputError(f"answer cost must be a finite number >= 0, got {a.cost!r}")
        # assign interaction ids: -1 means "its own interaction"; shared ids are remapped
        remap: dict[int, int] = {}
        entries = []
        for a in answers:
            if a.interaction < 0:
                inter = self._next_interaction
                self._next_interaction += 1
            else:
                if a.interaction not in remap:
                    remap[a.interaction] = self._next_interaction
                    self._next_interaction += 1
                inter = remap[a.interaction]
            label = a.label
            if a.index == DECLINED:
                pass
            elif a.in_task:
                self._status[a.index] = _LABELED
                self._labels[a.index] = label  # type: ignore[assignment]
                label = int(label) if self.task == "classification" else float(label)  # type: ignore[arg-type]
            else:
                self._status[a.index] = _REJECTED
            entries.append(Annotation(cycle, int(a.index), label, bool(a.in_task), float(a.cost), a.source, inter))
        self._log.extend(entries)
        return entries

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
        """Replay a saved log onto fresh pools over the same inputs."""
        if int(state["n"]) != self.n:
            raise InvalidInputError(f"saved pools have n={state['n']}, these have n={self.n}")
        self._status[:] = _UNLABELED
        self._log.clear()
        self._next_interaction = 0
        for entry in state["log"]:
            a = Annotation(**entry)
            if a.index == DECLINED:
                pass
            elif a.in_task:
                self._status[a.index] = _LABELED
                self._labels[a.index] = a.label  # type: ignore[assignment]
            else:
                self._status[a.index] = _REJECTED
            self._log.append(a)
            self._next_interaction = max(self._next_interaction, a.interaction + 1)
        self.cycle = int(state["cycle"])
