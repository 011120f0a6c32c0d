"""Reading a map-style ``torch.utils.data.Dataset`` in batches, with workers, reproducibly.

A pool may hold a tensor (the fast path: one indexing operation per batch) or
any map-style Dataset whose items are inputs or ``(input, ...)`` tuples.  For
a Dataset, batches are read through a :class:`torch.utils.data.DataLoader`
driven by an explicit list of index batches (so the order is exactly the
trainer's), with worker processes and pinned memory when asked.

Random augmentations inside a user's ``__getitem__`` are made reproducible:
every item is read under the global RNGs (torch, numpy, :mod:`random`) seeded
from ``(seed, index)`` and restored afterwards, in the main process or in a
worker alike.  Inference reads use one fixed seed, so scoring the same sample
twice gives the same input (deterministic scores, cacheable outputs); training
reads use a seed per epoch, so augmentations differ across epochs yet repeat
across runs and across a kill and resume.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .exceptions import InvalidInputError

__all__ = ["SeededItems", "iter_batches", "read_items", "read_pairs", "EVAL_SEED"]

#: seed of inference reads (any fixed value: the same item always reads the same)
EVAL_SEED = 0


def _first(item: Any) -> Any:
    return item[0] if isinstance(item, (tuple, list)) else item


class SeededItems(Dataset):
    """The inputs of ``dataset``, item ``i`` read under RNGs seeded from ``(seed, i)``.

    Parameters
    ----------
    dataset : Dataset
        Map-style; items are inputs or ``(input, ...)`` tuples (only the input is kept).
    seed : int
        Combined with the index into one 64-bit seed by :class:`numpy.random.SeedSequence`.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.as_tensor(_first(_seeded(lambda: self.dataset[int(i)], _mix(self.seed, int(i)))))


def _seeded(read: Callable[[], Any], s: int) -> Any:
    """``read()`` under the global RNGs (torch, numpy, :mod:`random`) seeded with ``s``; their states restored after."""
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s)
            random.seed(s)
            np.random.seed(s % (2**32))
            return read()
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _mix(seed: int, index: int) -> int:
    """A 63-bit seed from ``(seed, index)`` (splitmix64 finaliser: neighbouring indices get unrelated seeds)."""
    z = (seed * 0x9E3779B97F4A7C15 + index + 1) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) >> 1


def _stack(items: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(items)


def iter_batches(
    dataset: Dataset,
    batches: Sequence[np.ndarray],
    *,
    seed: int = EVAL_SEED,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> Iterator[torch.Tensor]:
    """Yield the stacked inputs of each index batch of ``batches``, in order.

    With ``num_workers > 0`` one DataLoader reads ahead in worker processes
    (``prefetch_factor`` 2 batches per worker); the result does not depend on
    the number of workers (items are seeded by index, not by worker).
    """
    index_batches = [np.asarray(b, dtype=np.int64).tolist() for b in batches]
    if not index_batches:
        return iter(())
    view = SeededItems(dataset, seed)
    if num_workers == 0:
        return (torch.stack([view[i] for i in b]) for b in index_batches)
    loader = DataLoader(
        view, batch_sampler=index_batches, num_workers=num_workers, pin_memory=pin_memory,
        collate_fn=_stack, multiprocessing_context="fork" if _fork_ok() else None,
    )
    return iter(loader)


def read_items(
    dataset: Dataset,
    indices: np.ndarray,
    *,
    seed: int = EVAL_SEED,
    num_workers: int = 0,
    pin_memory: bool = False,
    batch_size: int = 256,
) -> torch.Tensor:
    """The stacked inputs of ``indices`` (one tensor), read in batches of ``batch_size``."""
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size == 0:
        example = SeededItems(dataset, seed)[0]
        return example.new_empty((0, *example.shape))
    workers = num_workers if idx.size > batch_size else 0  # small reads: no worker start-up
    parts = [idx[s : s + batch_size] for s in range(0, idx.size, batch_size)]
    return torch.cat(list(iter_batches(dataset, parts, seed=seed, num_workers=workers, pin_memory=pin_memory)))


def _fork_ok() -> bool:
    import multiprocessing as mp

    return "fork" in mp.get_all_start_methods()


def read_pairs(dataset: Dataset, *, seed: int = EVAL_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """Every ``(input, target)`` item of ``dataset`` as two stacked tensors, item ``i`` read under RNGs seeded from ``(seed, i)``."""
    inputs, targets = [], []
    for i in range(len(dataset)):  # type: ignore[arg-type]
        item = _seeded(functools.partial(dataset.__getitem__, i), _mix(int(seed), i))
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise InvalidInputError(f"a test Dataset must give (input, target) items; item {i} is {type(item).__name__}")
        inputs.append(torch.as_tensor(item[0]))
        targets.append(torch.as_tensor(item[1]))
    return torch.stack(inputs), torch.stack(targets)
