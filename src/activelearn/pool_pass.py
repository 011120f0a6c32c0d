"""Batched model passes over pool rows, sharded across ranks in a distributed run.

:func:`pool_outputs` serves :meth:`ALModel.outputs <activelearn.model.ALModel.outputs>`:
it computes only the rows the :class:`~activelearn.output_cache.OutputCache`
lacks, ``batch_size`` inputs per forward pass.  In a ``torch.distributed`` run
(:mod:`activelearn.distributed`) every rank makes the same call; each runs the
network on its contiguous shard of the missing rows and the shards are
all-gathered, so every rank caches and returns the full outputs.  ``local=True``
skips the collective: the rank computes every missing row itself and does not
cache them (the rows are rank-specific, and the cache must stay the same on
every rank).
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol, Sequence

import numpy as np
import torch

from . import distributed as dist_helpers
from .output_cache import OutputCache
from .progress import tqdm

__all__ = ["BatchPredictor", "pool_outputs"]


class BatchPredictor(Protocol):
    """What a pass needs of the model (an :class:`~activelearn.model.ALModel`)."""

    def predict_batch(self, x: torch.Tensor, names: Iterable[str]) -> dict[str, torch.Tensor]: ...


def pool_outputs(
    model: BatchPredictor,
    cache: OutputCache,
    pools: Any,
    idx: np.ndarray,
    names: Sequence[str],
    *,
    batch_size: int,
    local: bool = False,
    progress: bool = False,
) -> dict[str, torch.Tensor]:
    """Outputs ``names`` for the pool rows ``idx`` (non-empty), computing what ``cache`` lacks."""
    missing = {n: cache.missing(pools, idx, n) for n in names}
    todo = np.unique(np.concatenate(list(missing.values())))
    if todo.size == 0:
        return cache.take(pools, idx, names)
    need = [n for n in names if missing[n].size]
    if not dist_helpers.is_distributed():
        for rows, res in _batches(model, pools, todo, need, batch_size, progress):
            cache.store(pools, rows, res)
        return cache.take(pools, idx, names)
    if local:  # this rank's own rows: merged with the cached ones, not cached
        computed = _collect(model, pools, todo, need, batch_size, progress)
        out = cache.take(pools, idx, [n for n in names if n not in computed])
        out.update({n: cache.merge(pools, idx, n, todo, torch.cat(v)) for n, v in computed.items()})
        return {n: out[n] for n in names}
    a, b = dist_helpers.shard_range(todo.size)  # this rank runs its shard; the gather fills in the others
    parts = _collect(model, pools, todo[a:b], need, batch_size, progress)
    cache.store(pools, todo, {n: _gather_rows(model, parts[n], pools.inputs(todo[:1]), n) for n in need})
    return cache.take(pools, idx, names)


def _batches(model: BatchPredictor, pools: Any, rows: np.ndarray, names: list[str], bs: int, progress: bool):
    """``(rows of the batch, outputs)`` per forward pass over ``rows``."""
    starts: Iterable[int] = range(0, rows.size, bs)
    if progress and rows.size > 20 * bs:
        starts = tqdm(starts, desc="scoring", leave=False)
    for start in starts:
        part = rows[start : start + bs]
        yield part, model.predict_batch(pools.inputs(part), names)


def _collect(model: BatchPredictor, pools: Any, rows: np.ndarray, names: list[str], bs: int, progress: bool) -> dict[str, list[torch.Tensor]]:
    """Every batch's outputs over ``rows``, per name (empty lists when ``rows`` is empty)."""
    parts: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    for _, res in _batches(model, pools, rows, names, bs, progress):
        for n in names:
            parts[n].append(res[n])
    return parts


def _gather_rows(model: BatchPredictor, parts: list[torch.Tensor], example: torch.Tensor, name: str) -> torch.Tensor:
    """Concatenate this rank's batches and all-gather every rank's (an empty shard still takes part)."""
    if parts:
        local = torch.cat(parts)
    else:  # no rows here: learn the row shape from one forward pass (cheap, no rows kept)
        local = model.predict_batch(example, [name])[name][:0]
    return dist_helpers.all_gather_rows(local)
