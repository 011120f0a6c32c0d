"""Crash-safe checkpoints of an :class:`~activelearn.loop.ActiveLoop`: save and load only.

A checkpoint is one file, ``<out_dir>/checkpoint.pt``, replaced atomically
(written to a temporary file in the same folder, fsynced, then renamed over the
old one), so a crash at any instant leaves either the previous checkpoint or the
new one, never a torn file.  Its content is ``loop.state_dict()`` (plus the
format version, the stage and the time): the composition of every part's own
state, each part saving and loading itself,

* the pools (``Pools.state_dict``: the whole annotation log, replayed on load),
* the :class:`~activelearn.history.History` (``History.state_dict``),
* the model (``ALModel.engine_state``: weights of the backbone and of every
  strategy-owned extension, and the initial weights ``reset_parameters``
  restores),
* the trainer (``Trainer.state_dict``: the optimizer state),
* the strategy (``Strategy.state_dict``: fitted state such as the contrastive
  encoder or the IBAL-D autoencoder; empty for stateless strategies),
* the oracle's own state when it has ``state_dict``/``load_state_dict``,
* every global RNG state (torch CPU and CUDA, NumPy's and Python's),
* the cycle in progress (``loop.pending``): a selection already made (stage
  ``"selected"``: the saved query is asked again on resume, never re-selected)
  or already answered (stage ``"answered"``: never asked again),
* the *recipe* the run was built from, so that
  :func:`activelearn.experiment.resume` and ``activelearn run --resume out_dir``
  need nothing else.

The file is read with ``torch.load(weights_only=True)``: only tensors and plain
Python containers, numbers and strings are stored, and loading never executes
code.  Loading the state into a loop is the loop's job
(:meth:`ActiveLoop.load_state_dict <activelearn.loop.ActiveLoop.load_state_dict>`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import time
import warnings
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from .exceptions import CheckpointError, OutputWriteError
from .history import to_plain


class Checkpointable(Protocol):
    """What a checkpoint is taken of: an object with an ``out_dir`` and a state (an ``ActiveLoop``)."""

    out_dir: Path | None

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

__all__ = [
    "CHECKPOINT_NAME",
    "Checkpointable",
    "atomic_write_bytes",
    "atomic_write_text",
    "checkpoint_path",
    "rng_state",
    "set_rng_state",
    "save_checkpoint",
    "to_plain",
    "upgrade_v1",
    "load_checkpoint",
    "remove_stale_tmp",
    "restore_checkpoint",
]

CHECKPOINT_NAME = "checkpoint.pt"
ANNOTATIONS_NAME = "annotations.json"
FORMAT_VERSION = 2
STAGES = ("initial", "selected", "answered", "cycle")


# ----------------------------------------------------------------- atomic I/O
def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temporary file, fsync, rename, fsync the folder.

    The temporary file is ``.<name>.<pid>.tmp`` next to ``path``; it is removed
    when the write fails or is interrupted (Ctrl-C), so ``path`` keeps its
    previous content.  One left by a killed process is removed by
    :func:`remove_stale_tmp`.

    Raises
    ------
    OutputWriteError
        If the folder cannot be written (read-only file system, full disk, no
        permission); ``path`` is unchanged.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:  # Ctrl-C included: drop the partial file
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputWriteError(
                f"cannot write {path}: {exc.strerror or exc}; the previous file is unchanged. "
                "Free disk space or choose a writable output folder (--out)"
            ) from exc
        raise
    _fsync_folder(path.parent)
    return path


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (not supported on every platform)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_TMP_NAME = re.compile(r"^\..+\.(\d+)\.tmp$")


def _pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process (or a number no process can have: left alone)
    return True


def remove_stale_tmp(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files (``.<name>.<pid>.tmp``) that dead processes left in ``folder``.

    :func:`atomic_write_bytes` names its temporary file after the writer's
    process id; a process killed in the middle of a write leaves it behind.
    Only files whose process no longer exists are removed (a live writer's file
    is kept).  On Windows, where signal 0 cannot probe a process, nothing is
    removed.  Returns the removed paths.
    """
    folder = Path(folder)
    if os.name == "nt" or not folder.is_dir():
        return []
    removed = []
    for entry in folder.iterdir():
        match = _TMP_NAME.match(entry.name)
        if match and entry.is_file() and not _pid_alive(int(match.group(1))):
            try:
                entry.unlink()
            except OSError:
                continue  # already gone, or not ours to remove: leave it
            removed.append(entry)
    return removed


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def checkpoint_path(out_dir: str | os.PathLike[str]) -> Path:
    """Where the checkpoint of a run writing to ``out_dir`` lives."""
    return Path(out_dir) / CHECKPOINT_NAME


# ------------------------------------------------------------------ RNG state
def rng_state() -> dict[str, Any]:
    """Every global RNG state (torch CPU, each CUDA device, NumPy, Python) as plain data."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": [s for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": int(py_version), "internal": list(py_internal), "gauss": py_gauss},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        for i, s in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s, i)
    npst = state["numpy"]
    np.random.set_state((npst["kind"], npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"], npst["cached"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))


# --------------------------------------------------------------------- save
def save_checkpoint(loop: "Checkpointable", stage: str) -> Path:
    """Write ``loop.state_dict()`` to ``loop.out_dir/checkpoint.pt`` (atomically).

    Parameters
    ----------
    loop : ActiveLoop
        A loop with ``out_dir`` set.
    stage : {"initial", "selected", "answered", "cycle"}
        What just happened: before the initial query, a selection made (not yet
        answered), an answer batch recorded, or a cycle completed.
    """
    if loop.out_dir is None:
        raise CheckpointError("this loop has no out_dir; pass out_dir= to ActiveLoop to enable checkpoints")
    if stage not in STAGES:
        raise CheckpointError(f"unknown checkpoint stage {stage!r}; expected one of {list(STAGES)}")
    state = {"format": FORMAT_VERSION, "stage": stage, "saved_at": time.time(), **loop.state_dict()}
    buf = io.BytesIO()
    torch.save(state, buf)
    path = atomic_write_bytes(checkpoint_path(loop.out_dir), buf.getvalue())
    atomic_write_text(loop.out_dir / ANNOTATIONS_NAME, json.dumps(state["pools"]["log"], indent=0))
    return path


# --------------------------------------------------------------------- load
def load_checkpoint(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the checkpoint of ``out_dir`` (a folder or the ``checkpoint.pt`` file itself)."""
    p = Path(out_dir)
    path = p if p.is_file() else checkpoint_path(p)
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at {path}; a run writes one to its out_dir (--out) after every cycle. "
            "Check the folder, or start a new run without --resume"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupted or foreign file
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}; it is not an activelearn checkpoint or is damaged") from exc
    if not isinstance(state, dict) or "format" not in state:
        raise CheckpointError(f"{path} is not an activelearn checkpoint of format {FORMAT_VERSION}")
    if state["format"] == 1:
        warnings.warn(
            f"{path} is a format-1 checkpoint: it holds no strategy state, so a strategy that keeps one "
            "(contrastive_*, ibal_d, entropy_d) starts it afresh and the resumed run can differ from an uninterrupted one",
            UserWarning,
            stacklevel=2,
        )
        return upgrade_v1(state)
    if state["format"] != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {state['format']!r}; this version of activelearn reads formats 1 and {FORMAT_VERSION}")
    return state


def upgrade_v1(state: dict[str, Any]) -> dict[str, Any]:
    """A format-1 checkpoint in the format-2 layout (strategy state empty).

    Format 1 kept the model's weights, initial weights and the optimizer at the
    top level and a pending cycle as ``{"record", "answered"}``; an unanswered
    selection is the part of ``record["selected"]`` not yet in the log, asked
    as plain samples (format 1 did not keep cluster groups), and the pending
    cycle counts one ``select`` call (format 1 did not count them mid-cycle).
    """
    out = {k: v for k, v in state.items() if k not in ("model", "model_initial", "optimizer")}
    initial = state["model_initial"]
    out["format"] = FORMAT_VERSION
    out["model"] = {"weights": state["model"], "initial": initial["backbone"], "extensions_initial": initial["extensions"],
                    "built": sorted(initial["extensions"])}
    out["trainer"] = {"optimizer": state["optimizer"]}
    out["strategy"] = {}
    pending = state["pending"]
    if pending is not None:
        logged = {int(e["index"]) for e in state["pools"]["log"]}
        todo = [int(i) for i in pending["record"]["selected"] if int(i) not in logged]
        query = None if pending["answered"] else {"indices": todo, "groups": []}
        record = {**pending["record"], "extra": {**pending["record"]["extra"]}}
        record["extra"].setdefault("select_calls", 1)  # format 1 counted calls only at the end of a cycle
        out["pending"] = {"record": record, "query": query, "answered": query is None, "progress": True}
    return out


def restore_checkpoint(loop: "Checkpointable", state: dict[str, Any]) -> None:
    """Load a checkpoint's state into a loop built the same way (``loop.load_state_dict(state)``)."""
    loop.load_state_dict(state)
