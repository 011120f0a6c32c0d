"""Model outputs for pools larger than memory: written to and read from ``.npy`` memmaps.

:func:`write_embeddings` runs the model over a dataset batch by batch and
writes each batch straight into a ``numpy`` memory-mapped ``.npy`` file
(``np.lib.format.open_memmap``), so only one batch of inputs and outputs is in
memory at a time.  :func:`read_embeddings` opens the file read-only without
loading it, and :func:`iter_embeddings` yields it in chunks as tensors.

The memmap can be handed to :func:`activelearn.ops.kcenter_greedy` directly:
on CPU a float32 memmap larger than one distance block is used in place, and
the operating system pages rows in as the greedy scans them.  In a
``torch.distributed`` run each rank passes its own slice
``read_embeddings(path)[start:stop]`` (:func:`activelearn.distributed.shard_range`)
to :func:`activelearn.ops.kcenter_greedy_distributed`.

>>> path = write_embeddings(model, pools, "emb.npy")          # doctest: +SKIP
>>> picks = kcenter_greedy(read_embeddings(path), 1000)       # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from . import distributed as D
from ._validation import check_positive_int, resolve_device
from .exceptions import InvalidInputError

__all__ = ["write_embeddings", "read_embeddings", "iter_embeddings"]


def _source(data: Any) -> tuple[int, Any]:
    """Number of rows and a function ``rows -> input batch`` for a tensor, an array or a Pools."""
    if hasattr(data, "inputs") and hasattr(data, "n"):
        return int(data.n), data.inputs
    if isinstance(data, (torch.Tensor, np.ndarray)):
        return int(data.shape[0]), lambda rows: torch.as_tensor(data[rows])
    raise InvalidInputError(f"data must be a tensor, a numpy array or a Pools, got {type(data).__name__}")


def write_embeddings(
    model: Any,
    data: Any,
    path: str | Path,
    *,
    name: str = "embeddings",
    indices: Sequence[int] | np.ndarray | None = None,
    batch_size: int | None = None,
    progress: bool = False,
) -> Path:
    """Run ``model`` over ``data`` and write output ``name`` to a float32 ``.npy`` memmap.

    Parameters
    ----------
    model : ALModel
        Any :class:`~activelearn.model.ALModel`; ``name`` is one of its
        ``provides()`` (``"embeddings"``, ``"probs"``, an extension's output...).
    data : torch.Tensor, numpy.ndarray or Pools
        The inputs (rows are read batch by batch, so a memmapped array works).
    path : str or Path
        The ``.npy`` file to create (overwritten).
    indices : array of int, optional
        Rows to embed, in this order (default: all).  Row ``i`` of the file
        is the output for ``indices[i]``.
    batch_size : int, optional
        Rows per forward pass (default ``model.eval_batch_size``).
    progress : bool
        Show a progress bar.

    Returns
    -------
    Path
        ``path``.

    Notes
    -----
    In a ``torch.distributed`` run every rank calls this with the same
    arguments: rank 0 creates the file, each rank writes its contiguous shard
    of the rows (:func:`activelearn.distributed.shard_range`), and the call
    returns once every rank has flushed.  The ranks must share the file system
    holding ``path``.
    """
    n_all, inputs = _source(data)
    rows = np.arange(n_all, dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64)
    if rows.ndim != 1 or rows.size == 0 or rows.min() < 0 or rows.max() >= n_all:
        raise InvalidInputError(f"indices must be a non-empty 1-D array of rows in [0, {n_all}), got shape {rows.shape}")
    bs = check_positive_int("batch_size", batch_size or model.eval_batch_size)
    path = Path(path)
    model.build_extensions(inputs(rows[:2]))
    width = model.predict_batch(inputs(rows[:1]), [name])[name].reshape(1, -1).shape[1]

    def create() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows.size, width))
        mm.flush()
        del mm

    D.on_main_process(create)
    a, b = D.shard_range(rows.size)
    mm = np.lib.format.open_memmap(path, mode="r+")
    starts = range(a, b, bs)
    if progress:
        from .progress import tqdm  # a bar on a terminal, silent in a log

        starts = tqdm(starts, desc="embedding", leave=False)
    for s in starts:
        e = min(s + bs, b)
        out = model.predict_batch(inputs(rows[s:e]), [name])[name]
        mm[s:e] = out.reshape(e - s, -1).float().cpu().numpy()
    mm.flush()
    del mm
    D.barrier()
    return path


def read_embeddings(path: str | Path) -> np.memmap:
    """Open a ``.npy`` file written by :func:`write_embeddings` read-only, without loading it."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"no embeddings file at {path}; write one with write_embeddings(model, data, path)")
    return np.load(path, mmap_mode="r")


def iter_embeddings(
    path: str | Path,
    *,
    chunk_rows: int = 65536,
    start: int = 0,
    stop: int | None = None,
    device: str | torch.device | None = "cpu",
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(first_row, tensor)`` chunks of rows ``[start, stop)`` of an embeddings file.

    Each chunk is copied from disk to ``device``; memory is one chunk.
    """
    chunk_rows = check_positive_int("chunk_rows", chunk_rows)
    mm = read_embeddings(path)
    stop = mm.shape[0] if stop is None else min(int(stop), mm.shape[0])
    dev = resolve_device(device)
    for s in range(int(start), stop, chunk_rows):
        e = min(s + chunk_rows, stop)
        yield s, torch.from_numpy(np.array(mm[s:e])).to(dev)
