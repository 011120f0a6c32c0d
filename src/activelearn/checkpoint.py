"""Crash-safe checkpoints of an :class:`~activelearn.loop.ActiveLoop`.

A checkpoint is one file, ``<out_dir>/checkpoint.pt``, replaced atomically
(written to a temporary file in the same folder, fsynced, then renamed over the
old one), so a crash at any instant leaves either the previous checkpoint or the
new one, never a torn file.  It holds everything a run needs to continue:

* the pools (the whole annotation log, replayed on load),
* the :class:`~activelearn.history.History`,
* the model's ``state_dict`` (backbone plus every strategy-owned extension:
  auxiliary heads, loss-prediction modules, prototypes...), the initial weights
  that ``reset_parameters`` restores, and the trainer's optimizer state,
* every RNG state (torch CPU and CUDA, NumPy's and Python's global generators),
* the oracle's own state when it has one (``state_dict``/``load_state_dict``),
* the cycle in progress: a selection already made (``stage="selected"``, asked
  again on resume with the same indices, never re-selected) or already answered
  (``stage="answered"``, never asked again),
* the *recipe* the run was built from (e.g. the CLI arguments), so
  ``ActiveLoop.resume(out_dir)`` and ``activelearn run --resume out_dir`` need
  nothing else.

The file is read with ``torch.load(weights_only=True)``: only tensors and plain
Python containers are stored, and loading never executes pickled code.
"""

from __future__ import annotations

import io
import json
import os
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .exceptions import CheckpointError
from .oracle import StatefulOracle
from .history import CycleRecord, History, _json_default

if TYPE_CHECKING:
    from .loop import ActiveLoop

__all__ = [
    "CHECKPOINT_NAME",
    "atomic_write_bytes",
    "atomic_write_text",
    "checkpoint_path",
    "rng_state",
    "set_rng_state",
    "save_checkpoint",
    "load_checkpoint",
    "restore_checkpoint",
]

CHECKPOINT_NAME = "checkpoint.pt"
ANNOTATIONS_NAME = "annotations.json"
FORMAT_VERSION = 1
STAGES = ("initial", "selected", "answered", "cycle")


# ----------------------------------------------------------------- atomic I/O
def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temporary file, fsync, rename, fsync the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    try:  # make the rename itself durable (not supported on every platform)
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return path
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
    return path


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
def _plain(obj: Any) -> Any:
    """JSON round trip: numpy scalars and arrays become Python numbers and lists."""
    return json.loads(json.dumps(obj, default=_json_default))


def save_checkpoint(loop: "ActiveLoop", stage: str, *, pending: CycleRecord | None = None, answered: bool = False) -> Path:
    """Write the loop's whole state to ``loop.out_dir/checkpoint.pt`` (atomically).

    Parameters
    ----------
    loop : ActiveLoop
        A loop with ``out_dir`` set.
    stage : {"initial", "selected", "answered", "cycle"}
        What just happened: before the initial query, a selection made (not yet
        answered), an answer batch recorded, or a cycle completed.
    pending : CycleRecord, optional
        The record of the cycle in progress (its ``selected`` holds the
        selection), when the checkpoint is taken inside a cycle.
    answered : bool
        Whether the pending selection has been answered and recorded.
    """
    if loop.out_dir is None:
        raise CheckpointError("this loop has no out_dir; pass out_dir= to ActiveLoop to enable checkpoints")
    if stage not in STAGES:
        raise CheckpointError(f"unknown checkpoint stage {stage!r}; expected one of {list(STAGES)}")
    model, trainer = loop.model, loop.trainer
    model.build_extensions(loop.pools.inputs(np.arange(min(2, loop.pools.n))))  # seeded: same weights as a later build
    oracle_state = loop.oracle.state_dict() if isinstance(loop.oracle, StatefulOracle) else None
    state = {
        "format": FORMAT_VERSION,
        "stage": stage,
        "saved_at": time.time(),
        "identity": loop.identity(),
        "recipe": _plain(loop.recipe) if loop.recipe is not None else None,
        "pending": None if pending is None else {"record": _plain(asdict(pending)), "answered": bool(answered)},
        "pools": _plain(loop.pools.state_dict()),
        "history": _plain(loop.history.to_dict()),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_initial": {
            "backbone": dict(model._initial_state),
            "extensions": {n: dict(s) for n, s in model._ext_initial.items()},
        },
        "optimizer": trainer.optimizer.state_dict() if trainer.optimizer is not None else None,
        "rng": rng_state(),
        "oracle": _plain(oracle_state) if oracle_state is not None else None,
    }
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
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not an activelearn checkpoint of format {FORMAT_VERSION}")
    return state


def restore_checkpoint(loop: "ActiveLoop", state: dict[str, Any]) -> dict[str, Any] | None:
    """Load a checkpoint's states into a loop built the same way as the saved one.

    Everything is checked before anything changes.  Returns the pending cycle
    (``{"record": CycleRecord, "answered": bool}``) or None.

    Raises
    ------
    CheckpointError
        If the loop differs from the saved one (strategy, seed, budget, cycles,
        pool size, initial set) or the model's parameters do not match.
    """
    saved, mine = state["identity"], loop.identity()
    diff = {k: (saved.get(k), mine.get(k)) for k in set(saved) | set(mine) if saved.get(k) != mine.get(k)}
    if diff:
        details = "; ".join(f"{k}: saved {a!r}, this loop {b!r}" for k, (a, b) in sorted(diff.items()))
        raise CheckpointError(f"the checkpoint belongs to a different run ({details}); rebuild the loop with the saved settings")
    model = loop.model
    n = loop.pools.n
    model.build_extensions(loop.pools.inputs(np.arange(min(2, n))))
    own = model.state_dict()
    missing = sorted(set(own) - set(state["model"]))
    extra = sorted(set(state["model"]) - set(own))
    if missing or extra:
        raise CheckpointError(
            f"model parameters differ from the checkpoint (missing {missing[:4]}, unexpected {extra[:4]}); "
            "build the same backbone and attach the same extensions"
        )
    # -- all checks passed: change state
    loop.pools.load_state_dict(state["pools"])
    loop.history = History.from_dict(state["history"])
    model._initial_state = dict(state["model_initial"]["backbone"])
    for name, s in state["model_initial"]["extensions"].items():
        model._ext_initial[name] = dict(s)
    model.load_state_dict(state["model"])
    model.mark_trained()
    if state["optimizer"] is not None:
        loop.trainer.optimizer = loop.trainer._make_optimizer(model)
        loop.trainer.optimizer.load_state_dict(state["optimizer"])
    if state["oracle"] is not None and isinstance(loop.oracle, StatefulOracle):
        loop.oracle.load_state_dict(state["oracle"])
    set_rng_state(state["rng"])
    pending = state["pending"]
    if pending is None:
        return None
    return {"record": CycleRecord(**pending["record"]), "answered": bool(pending["answered"])}
