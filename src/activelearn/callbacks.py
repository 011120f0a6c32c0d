"""Loop callbacks: the cross-cutting work around the active-learning cycle.

A :class:`Callback` overrides any of the named hooks below; the loop calls them
in this order for each cycle::

    on_run_start(loop)                       once per run() (also after a resume)
    on_cycle_start(loop, cycle)              before training (not for a cycle resumed mid-selection)
    on_epoch_end(loop, cycle, epoch, logs)   after each training epoch (logs: train_loss, lr)
    on_record(loop, record)                  after training and evaluation
    on_selection(loop, record, query)        a selection made, before the oracle is asked
    on_answers(loop, record, entries)        the oracle's answers recorded in the pools
    on_cycle_end(loop, record)               the record complete, appended to the History
    on_run_end(loop)                         after the last cycle

``record`` is None for the initial query (before the first cycle).  A plain
callable ``cb(loop, record)`` in ``ActiveLoop(callbacks=...)`` is called at
``on_cycle_end``, as before callbacks had hooks.

The loop's own bookkeeping is made of callbacks too: :class:`OpenSetBooks` and
:class:`ClusterBooks` fill ``record.extra``, and, after the user's callbacks (so
that what they add to ``record.extra`` is saved), :class:`HistoryFiles` writes
``history.json``/``history.csv`` and :class:`Checkpointer` saves the checkpoint
(see :mod:`activelearn.checkpoint`).  :class:`Progress` shows a bar over cycles
on a terminal and writes one line per cycle anywhere else.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, TextIO

from . import checkpoint as ckpt
from . import distributed as dist_helpers
from .history import CycleRecord, History
from .model import ALModel
from .oracle import Oracle, Query
from .pools import DECLINED, Annotation, Pools
from .progress import interactive, tqdm


class LoopView(Protocol):
    """What callbacks see of the loop (:class:`~activelearn.loop.ActiveLoop` is one).

    A protocol rather than the class, so that this module does not import the
    loop that imports it.
    """

    model: ALModel
    pools: Pools
    oracle: Oracle
    history: History
    out_dir: Path | None
    checkpoint: bool
    progress: bool
    cycles: int

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

__all__ = ["Callback", "LoopView", "as_callback", "open_set_books", "OpenSetBooks", "ClusterBooks", "cluster_books", "HistoryFiles", "Checkpointer", "Progress", "cycle_line"]


class Callback:
    """Base class of loop callbacks: every hook does nothing unless overridden."""

    def on_run_start(self, loop: "LoopView") -> None:
        """Called when :meth:`ActiveLoop.run` starts."""

    def on_cycle_start(self, loop: "LoopView", cycle: int) -> None:
        """Called before the model of ``cycle`` is trained."""

    def on_epoch_end(self, loop: "LoopView", cycle: int, epoch: int, logs: dict[str, float]) -> None:
        """Called after each training epoch; ``logs`` holds ``train_loss`` (mean over the epoch) and ``lr``."""

    def on_record(self, loop: "LoopView", record: CycleRecord) -> None:
        """Called once the cycle's model is trained and evaluated (books at training time)."""

    def on_selection(self, loop: "LoopView", record: CycleRecord | None, query: "Query") -> None:
        """Called when a selection is about to be asked (``record`` None: the initial set)."""

    def on_answers(self, loop: "LoopView", record: CycleRecord | None, entries: Sequence[Annotation]) -> None:
        """Called once the oracle's answers are recorded (``entries``: the new log entries)."""

    def on_cycle_end(self, loop: "LoopView", record: CycleRecord) -> None:
        """Called when the cycle's record is complete and appended to the History."""

    def on_run_end(self, loop: "LoopView") -> None:
        """Called after the last cycle."""


class _CycleEndFunction(Callback):
    """A plain ``fn(loop, record)``, called at the end of every cycle."""

    def __init__(self, fn: Callable[[Any, CycleRecord], None]) -> None:
        self.fn = fn

    def on_cycle_end(self, loop: "LoopView", record: CycleRecord) -> None:
        self.fn(loop, record)


def as_callback(cb: Callback | Callable[[Any, CycleRecord], None]) -> Callback:
    """A :class:`Callback` as is; any other callable becomes an ``on_cycle_end`` callback."""
    return cb if isinstance(cb, Callback) else _CycleEndFunction(cb)


# ------------------------------------------------------------------ accounting
def open_set_books(pools: Pools) -> dict[str, float]:
    """In-task labels, rejected ("not in task") samples, examined samples and wasted cost so far."""
    wasted = float(sum(a.cost for a in pools.log if not a.in_task))
    return {
        "in_task_labels": pools.n_labeled,
        "rejected": pools.n_rejected,
        "examined": pools.n_labeled + pools.n_rejected,
        "wasted_cost": wasted,
    }


class OpenSetBooks(Callback):
    """``record.extra`` gets :func:`open_set_books` at training time."""

    def on_record(self, loop: "LoopView", record: CycleRecord) -> None:
        record.extra.update(open_set_books(loop.pools))


class ClusterBooks(Callback):
    """Per-cycle counts of cluster interactions and the true accuracy of cluster labels.

    Read from the log entries of the cycle's queries (logged as cycle
    ``record.cycle + 1``), so a resumed cycle counts its earlier answers too.
    The accuracy comes from the oracle's optional ``audit(indices, labels)``
    (the simulated oracle has it); strategies never see it.
    """

    def on_cycle_end(self, loop: "LoopView", record: CycleRecord) -> None:
        cluster = [e for e in loop.pools.log if e.cycle == record.cycle + 1 and e.source == "cluster"]
        if cluster:
            record.extra.update(cluster_books(cluster, getattr(loop.oracle, "audit", None)))


def cluster_books(cluster: Sequence[Annotation], audit: Callable[..., float] | None = None) -> dict[str, float]:
    """Accepted and declined clusters, cluster-labeled samples and (with ``audit``) their true label accuracy."""
    labeled = [e for e in cluster if e.index != DECLINED and e.in_task]
    books = {
        "clusters_accepted": float(len({e.interaction for e in labeled})),
        "clusters_declined": float(sum(1 for e in cluster if e.index == DECLINED)),
        "cluster_labeled": float(len(labeled)),
    }
    if callable(audit) and labeled:
        books["cluster_label_accuracy"] = float(audit([e.index for e in labeled], [e.label for e in labeled]))
    return books


# --------------------------------------------------------------------- output
class HistoryFiles(Callback):
    """Writes ``history.json`` and ``history.csv`` to ``loop.out_dir`` after every cycle (main process only)."""

    def on_cycle_end(self, loop: "LoopView", record: CycleRecord) -> None:
        if loop.out_dir is not None:
            dist_helpers.on_main_process(self._write, loop)

    @staticmethod
    def _write(loop: "LoopView") -> None:
        assert loop.out_dir is not None
        loop.history.save_json(loop.out_dir / "history.json")
        loop.history.save_csv(loop.out_dir / "history.csv")


class Checkpointer(Callback):
    """Saves the loop's state to ``loop.out_dir`` (main process only) at every step a crash must not lose.

    Stages: ``"initial"`` before the initial query, ``"selected"`` when a
    selection is about to be asked, ``"answered"`` when its answers are
    recorded, ``"cycle"`` when a cycle ends.  Nothing is saved while
    ``loop.checkpoint`` is False or the loop has no ``out_dir``.
    """

    def _save(self, loop: "LoopView", stage: str) -> None:
        if loop.checkpoint and loop.out_dir is not None:
            dist_helpers.on_main_process(ckpt.save_checkpoint, loop, stage)

    def on_selection(self, loop: "LoopView", record: CycleRecord | None, query: "Query") -> None:
        self._save(loop, "initial" if record is None else "selected")

    def on_answers(self, loop: "LoopView", record: CycleRecord | None, entries: Sequence[Annotation]) -> None:
        self._save(loop, "answered")

    def on_cycle_end(self, loop: "LoopView", record: CycleRecord) -> None:
        self._save(loop, "cycle")


class Progress(Callback):
    """Progress over cycles (main process, while ``loop.progress``), aware of where it writes.

    On a terminal (or a notebook), a tqdm bar over cycles with the last
    accuracy and labeled count; the trainer's epoch bars and the model's
    scoring bars (:func:`activelearn.progress.tqdm`) nest under it.  Anywhere
    else (CI, ``nohup``, a log file) bars would write one update per step into
    the log, so it writes one plain line per finished cycle instead
    (:func:`cycle_line`) and the other bars stay silent.

    Parameters
    ----------
    stream : text stream, optional
        Where to write.  Default: ``sys.stderr`` at the start of each run (where tqdm writes).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.bar: Any = None
        self.out: TextIO | None = None  # set while writing lines

    def on_run_start(self, loop: "LoopView") -> None:
        if not (loop.progress and dist_helpers.is_main_process()):
            return
        stream = self.stream if self.stream is not None else sys.stderr
        if interactive(stream):
            self.bar = tqdm(total=loop.cycles, initial=len(loop.history), desc=str(loop.history.meta.get("strategy", "")), file=stream, leave=True)
        else:
            self.out = stream

    def on_cycle_end(self, loop: "LoopView", record: CycleRecord) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if "accuracy" in record.metrics:
                self.bar.set_postfix(acc=f"{record.metrics['accuracy']:.3f}", labeled=record.n_labeled)
        elif self.out is not None:
            print(cycle_line(loop, record), file=self.out, flush=True)

    def on_run_end(self, loop: "LoopView") -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar = self.out = None


def cycle_line(loop: "LoopView", record: CycleRecord) -> str:
    """One plain line for a finished cycle, e.g. ``entropy cycle 2/5: labeled 30, cost 30, accuracy 0.8125, train_loss 0.41, train 1.2 s, select 0.3 s``."""
    metrics = "".join(f", {k} {v:.4g}" for k, v in record.metrics.items())
    return (
        f"{loop.history.meta.get('strategy', '')} cycle {record.cycle + 1}/{loop.cycles}: labeled {record.n_labeled}, "
        f"cost {record.cost:g}{metrics}, train {record.train_seconds:.1f} s, select {record.select_seconds:.1f} s"
    )
