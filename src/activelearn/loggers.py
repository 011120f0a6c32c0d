"""Loggers: loop callbacks that write per-epoch and per-cycle events.

* :class:`CSVLogger` (no extra dependency): ``epochs.csv``, one row per
  training epoch (cycle, epoch, train_loss, lr), and ``cycles.csv``, one row
  per cycle (the columns of ``history.csv``).  The loop runs one by default
  that writes ``epochs.csv`` into its ``out_dir`` (the per-cycle file there is
  ``history.csv``, written by :class:`~activelearn.callbacks.HistoryFiles`).
* :class:`TensorBoardLogger` (``pip install activelearn[tensorboard]``): the
  same events as TensorBoard scalars, and the run's metadata as text.

Both write on the main process only (rank 0 of a distributed run).  Add them
with ``ActiveLoop(..., callbacks=[TensorBoardLogger("runs/x")])`` or
``loop.callbacks.append(...)``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from . import distributed as dist_helpers
from .callbacks import Callback, LoopView
from .exceptions import InvalidParameterError
from .history import CycleRecord

__all__ = ["CSVLogger", "TensorBoardLogger"]

_EPOCH_FIELDS = ["cycle", "epoch", "train_loss", "lr"]


def _folder(given: str | Path | None, loop: LoopView, sub: str = "") -> Path | None:
    """``given``, else the loop's ``out_dir`` (joined with ``sub``), else None."""
    if given is not None:
        return Path(given)
    if loop.out_dir is not None:
        return loop.out_dir / sub if sub else loop.out_dir
    return None


class CSVLogger(Callback):
    """Per-epoch and per-cycle CSV files.

    Parameters
    ----------
    directory : path, optional
        Where the files go (default: the loop's ``out_dir``; with neither,
        nothing is written).
    epochs : str or None, default "epochs.csv"
        File of the per-epoch rows ``cycle, epoch, train_loss, lr`` (epochs
        counted from 0 within each cycle); None: no per-epoch file.
    cycles : str or None, default "cycles.csv"
        File of the per-cycle rows, rewritten from the History at every cycle
        end (:meth:`activelearn.History.save_csv`); None: no per-cycle file.

    Notes
    -----
    A resumed run keeps the epoch rows of the cycles already trained and
    drops those of a training that was interrupted (it runs again), so the
    file never holds one epoch twice.
    """

    def __init__(self, directory: str | Path | None = None, *, epochs: str | None = "epochs.csv", cycles: str | None = "cycles.csv") -> None:
        self.directory = directory
        self.epochs = epochs
        self.cycles = cycles
        self._dir: Path | None = None

    def on_run_start(self, loop: LoopView) -> None:
        self._dir = _folder(self.directory, loop)
        if self._dir is None or self.epochs is None or not dist_helpers.is_main_process():
            return
        path = self._dir / self.epochs
        # epochs that stay: those of the complete cycles, and of a cycle restored inside its selection
        # (``loop.pending``: trained already, not trained again); any later row is from an interrupted training
        done = len(loop.history) + (getattr(loop, "pending", None) is not None)
        rows = []
        if path.exists():
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["cycle"]) < done]
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=_EPOCH_FIELDS)
            w.writeheader()
            w.writerows(rows)

    def on_epoch_end(self, loop: LoopView, cycle: int, epoch: int, logs: dict[str, float]) -> None:
        if self._dir is None or self.epochs is None or not dist_helpers.is_main_process():
            return
        with open(self._dir / self.epochs, "a", newline="") as f:
            csv.writer(f).writerow([cycle, epoch, logs.get("train_loss", ""), logs.get("lr", "")])

    def on_cycle_end(self, loop: LoopView, record: CycleRecord) -> None:
        if self._dir is not None and self.cycles is not None and dist_helpers.is_main_process():
            loop.history.save_csv(self._dir / self.cycles)


class TensorBoardLogger(Callback):
    """TensorBoard event files: training curves per cycle, metrics per labeled-set size.

    Scalars written:

    * ``train_loss/cycle_<c>`` and ``lr/cycle_<c>`` at every epoch (step: the
      epoch within cycle ``c``; the model is trained anew each cycle, so each
      cycle is its own curve);
    * ``cycle/<metric>`` for every test metric and ``train_loss``, plus
      ``cycle/cost``, ``cycle/interactions``, ``cycle/train_seconds`` and
      ``cycle/select_seconds``, at every cycle end (step: the labeled-set size,
      the x-axis of a learning curve);
    * ``History.meta`` (strategy, parameters, seed, versions, device, threads,
      git commit) as the text ``meta`` at the start of the run.

    Parameters
    ----------
    log_dir : path, optional
        The run directory (default: ``<out_dir>/tensorboard``).
    flush_secs : int, default 30
        Passed to :class:`torch.utils.tensorboard.SummaryWriter`; the logger
        also flushes at every cycle end.

    Raises
    ------
    InvalidParameterError
        At the start of the run, when neither ``log_dir`` nor the loop's
        ``out_dir`` is given.
    ImportError
        At the start of the run, when the ``tensorboard`` package is missing
        (``pip install activelearn[tensorboard]``).
    """

    def __init__(self, log_dir: str | Path | None = None, *, flush_secs: int = 30) -> None:
        self.log_dir = log_dir
        self.flush_secs = flush_secs
        self.writer: Any = None

    def on_run_start(self, loop: LoopView) -> None:
        if not dist_helpers.is_main_process():
            return
        folder = _folder(self.log_dir, loop, "tensorboard")
        if folder is None:
            raise InvalidParameterError("TensorBoardLogger needs a run directory: pass log_dir=... or give the loop an out_dir")
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # torch's module imports the tensorboard package
            raise ImportError(f"TensorBoardLogger needs the tensorboard package ({exc}); install it with: pip install activelearn[tensorboard]") from exc
        self.writer = SummaryWriter(log_dir=str(folder), flush_secs=self.flush_secs)
        self.writer.add_text("meta", "```\n" + json.dumps(loop.history.meta, indent=1, default=str) + "\n```", global_step=len(loop.history))

    def on_epoch_end(self, loop: LoopView, cycle: int, epoch: int, logs: dict[str, float]) -> None:
        if self.writer is not None:
            for key, value in logs.items():
                self.writer.add_scalar(f"{key}/cycle_{cycle}", float(value), global_step=epoch)

    def on_cycle_end(self, loop: LoopView, record: CycleRecord) -> None:
        if self.writer is None:
            return
        scalars = {**record.metrics, "cost": record.cost, "interactions": record.interactions, "train_seconds": record.train_seconds, "select_seconds": record.select_seconds}
        for key, value in scalars.items():
            self.writer.add_scalar(f"cycle/{key}", float(value), global_step=record.n_labeled)
        self.writer.flush()

    def on_run_end(self, loop: LoopView) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
