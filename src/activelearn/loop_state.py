"""The state of an :class:`~activelearn.loop.ActiveLoop`: its composition from the parts' states, and loading it back.

``ActiveLoop.state_dict()`` is :func:`loop_state_dict`: the loop's identity (what
a saved state must agree with), the recipe it was built from, the cycle in
progress (``loop.pending``) and each part's own ``state_dict`` (pools, history,
model engine state, trainer, strategy, a stateful oracle) plus every global RNG
state.  Plain containers, numbers, strings and tensors only, so
:mod:`activelearn.checkpoint` can write it with ``torch.save`` and read it with
``torch.load(weights_only=True)``.

This module takes the loop through the :class:`LoopParts` protocol and reads
only its public attributes; it does not import :mod:`activelearn.loop`.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import checkpoint as ckpt
from .exceptions import CheckpointError
from .history import CycleRecord, History
from .model import ALModel
from .oracle import Oracle, Query, StatefulOracle
from .pools import Pools
from .strategies.base import Strategy
from .trainer import Trainer

__all__ = ["LoopParts", "plain_params", "loop_identity", "loop_state_dict", "load_loop_state", "pending_state", "load_pending", "restore_loop"]


class LoopParts(Protocol):
    """What the state functions read and write of a loop (:class:`~activelearn.loop.ActiveLoop` is one)."""

    model: ALModel
    strategy: Strategy
    oracle: Oracle
    pools: Pools
    trainer: Trainer
    history: History
    seed: int
    budget: int
    cycles: int
    initial: np.ndarray
    recipe: dict[str, Any] | None
    pending: dict[str, Any] | None
    out_dir: Path | None

    def prepare(self) -> None: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def plain_params(strategy: Strategy) -> dict[str, Any]:
    """The strategy's parameters that are plain numbers, strings, booleans or None."""
    return {k: v for k, v in strategy.get_params().items() if isinstance(v, (int, float, str, bool, type(None)))}


def loop_identity(loop: LoopParts) -> dict[str, Any]:
    """What a saved state must agree with to be loaded into ``loop``."""
    return {
        "strategy": loop.strategy.name or type(loop.strategy).__name__,
        "strategy_params": ckpt.to_plain(plain_params(loop.strategy)),
        "seed": loop.seed,
        "budget": loop.budget,
        "cycles": loop.cycles,
        "pool_size": loop.pools.n,
        "initial": loop.initial.tolist(),
    }


def loop_state_dict(loop: LoopParts) -> dict[str, Any]:
    """Identity, recipe, the cycle in progress, each part's ``state_dict`` and the RNG states."""
    oracle_state = loop.oracle.state_dict() if isinstance(loop.oracle, StatefulOracle) else None
    return {
        "identity": loop_identity(loop),
        "recipe": ckpt.to_plain(loop.recipe),
        "pending": pending_state(loop.pending),
        "pools": ckpt.to_plain(loop.pools.state_dict()),
        "history": loop.history.state_dict(),
        "model": loop.model.engine_state(),
        "trainer": loop.trainer.state_dict(),
        "strategy": loop.strategy.state_dict(),
        "oracle": ckpt.to_plain(oracle_state),
        "rng": ckpt.rng_state(),
    }


#: the parts every saved loop state has (``recipe`` is optional: format-1 checkpoints have none)
_PARTS = ("identity", "pending", "pools", "history", "model", "trainer", "strategy", "oracle", "rng")


def load_loop_state(loop: LoopParts, state: dict[str, Any]) -> None:
    """Load :func:`loop_state_dict` into ``loop``, built the same way; parts, identity and model parameters are checked first."""
    missing = [k for k in _PARTS if k not in state]
    if missing:
        raise CheckpointError(f"the checkpoint lacks its {', '.join(missing)} part(s); it is damaged or not an activelearn checkpoint")
    saved, mine = state["identity"], loop_identity(loop)
    diff = {k: (saved.get(k), mine.get(k)) for k in set(saved) | set(mine) if saved.get(k) != mine.get(k)}
    if diff:
        details = "; ".join(f"{k}: saved {a!r}, this loop {b!r}" for k, (a, b) in sorted(diff.items()))
        raise CheckpointError(f"the checkpoint belongs to a different run ({details}); rebuild the loop with the saved settings")
    loop.prepare()
    if state["model"]["built"]:
        loop.model.build_extensions(loop.pools.inputs(np.arange(min(2, loop.pools.n))))
    loop.model.load_engine_state(state["model"])  # checks its parameter names first
    loop.strategy.load_state_dict(state["strategy"])
    loop.trainer.load_state_dict(state["trainer"], model=loop.model)
    loop.pools.load_state_dict(state["pools"])
    loop.history.load_state_dict(state["history"])
    if state["oracle"] is not None and isinstance(loop.oracle, StatefulOracle):
        loop.oracle.load_state_dict(state["oracle"])
    if loop.recipe is None and state.get("recipe") is not None:
        loop.recipe = state["recipe"]
    ckpt.set_rng_state(state["rng"])
    loop.pending = load_pending(state["pending"])


def restore_loop(loop: LoopParts, out_dir: str | Path | None = None, state: dict[str, Any] | None = None) -> None:
    """Load ``state``, or the checkpoint of ``out_dir`` (default ``loop.out_dir``), into ``loop``; it keeps checkpointing there."""
    folder = Path(out_dir) if out_dir is not None else loop.out_dir
    if folder is None:
        raise CheckpointError("restore() needs the run's folder: pass out_dir or build the loop with out_dir=")
    loop.load_state_dict(ckpt.load_checkpoint(folder) if state is None else state)
    if loop.out_dir is None:  # keep checkpointing where the run was
        loop.out_dir = folder


def pending_state(pending: dict[str, Any] | None) -> dict[str, Any] | None:
    """``loop.pending`` as plain data."""
    if pending is None:
        return None
    q = pending["query"]
    query = None if q is None else {
        "indices": np.asarray(q.indices, dtype=np.int64).tolist(),
        "groups": [np.asarray(g, dtype=np.int64).tolist() for g in q.groups],
    }
    return {"record": ckpt.to_plain(asdict(pending["record"])), "query": query, "answered": query is None, "progress": bool(pending["progress"])}


def load_pending(state: dict[str, Any] | None) -> dict[str, Any] | None:
    """What :func:`pending_state` saved, as ``loop.pending``."""
    if state is None:
        return None
    q = state["query"]
    query = None if q is None else Query(
        indices=np.asarray(q["indices"], dtype=np.int64),
        groups=tuple(np.asarray(g, dtype=np.int64) for g in q["groups"]),
    )
    return {"record": CycleRecord(**state["record"]), "query": query, "progress": bool(state["progress"])}
