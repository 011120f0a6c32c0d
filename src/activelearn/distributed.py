"""Multi-process helpers over ``torch.distributed`` (launched with ``torchrun``).

Every function here is a no-op, or returns the single-process answer, when no
process group is initialised or the world has one process: a library user who
never launches with ``torchrun`` is not affected at all.

Layout convention
-----------------
A pool of ``n`` rows is split into contiguous, deterministic shards in rank
order (:func:`shard_range`): rank ``r`` holds rows ``[start_r, stop_r)``, the
first ``n % world`` ranks one row more than the others.  Gathers
(:func:`all_gather_rows`) concatenate shards in rank order, so the gathered
array is exactly the single-process array.

Backends: ``gloo`` on CPU, ``nccl`` when CUDA is available (chosen by
:func:`init_from_env`); collectives use CPU tensors with gloo and the current
CUDA device with NCCL (:func:`comm_device`).  See ``docs/distributed.md``.
"""

from __future__ import annotations

import os
import warnings
from datetime import timedelta
from typing import Any, Callable, Literal, TypeVar, overload

import torch
import torch.distributed as dist

from .exceptions import InvalidParameterError

__all__ = [
    "init_from_env",
    "is_distributed",
    "rank",
    "world_size",
    "is_main_process",
    "shard_range",
    "shard_sizes",
    "comm_device",
    "barrier",
    "all_gather_rows",
    "all_gather_sizes",
    "broadcast_object",
    "on_main_process",
    "broadcast_module",
    "all_reduce_gradients",
    "all_reduce_sum",
    "cleanup",
]

T = TypeVar("T")


def init_from_env(backend: str | None = None, *, timeout_s: float = 1800.0) -> bool:
    """Initialise the default process group from ``torchrun``'s environment variables.

    Reads ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
    ``MASTER_PORT`` (set by ``torchrun``).  Does nothing when ``WORLD_SIZE`` is
    unset or 1, or when a process group already exists.

    Parameters
    ----------
    backend : {"gloo", "nccl"}, optional
        Default: ``"nccl"`` when CUDA is available, else ``"gloo"``.  With NCCL
        the process's CUDA device is set to ``LOCAL_RANK``.
    timeout_s : float
        Timeout of collectives, in seconds.

    Returns
    -------
    bool
        True when this call (or an earlier one) set up a process group of more
        than one process.
    """
    if dist.is_available() and dist.is_initialized():
        return world_size() > 1
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return False
    if not dist.is_available():
        raise InvalidParameterError(
            f"WORLD_SIZE={world} but this torch build has no torch.distributed; run a single process or install a build with it"
        )
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("gloo", "nccl"):
        raise InvalidParameterError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    _import_before_group()
    dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    return world_size() > 1


def _import_before_group() -> None:
    """Import ``torch.distributed.nn.functional`` while no process group exists.

    Its collectives take ``group=group.WORLD`` as a default argument, evaluated
    when the module is first imported.  torch imports it lazily (the first
    optimizer built imports ``torch._dynamo``, which reaches it through FSDP),
    so in a training run it used to be imported after the group was created:
    its ten defaults then held the default group, ``destroy_process_group``
    could not free it, and gloo's worker threads lived on until interpreter
    exit, where a thread still releasing a finished all-reduce's tensors was
    killed by SIGABRT.  Imported here first, the defaults are None.  See
    ``docs/distributed.md``, "Process-group teardown".
    """
    import torch.distributed.nn.functional  # noqa: F401


def is_distributed() -> bool:
    """True when a process group of more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's global rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """True on rank 0, and always in a single-process run."""
    return rank() == 0


def shard_range(n: int, rank: int | None = None, world: int | None = None) -> tuple[int, int]:
    """Contiguous shard ``[start, stop)`` of ``n`` rows owned by ``rank`` among ``world`` ranks.

    The first ``n % world`` ranks get ``n // world + 1`` rows, the others
    ``n // world`` (possibly 0 when ``n < world``).  Deterministic: every rank
    computes every other rank's shard without communicating.

    Examples
    --------
    >>> [shard_range(5, r, 2) for r in range(2)]
    [(0, 3), (3, 5)]
    """
    r = globals()["rank"]() if rank is None else int(rank)
    w = world_size() if world is None else int(world)
    if n < 0 or w < 1 or not 0 <= r < w:
        raise InvalidParameterError(f"shard_range needs n >= 0, world >= 1 and 0 <= rank < world, got n={n}, rank={r}, world={w}")
    base, extra = divmod(int(n), w)
    start = r * base + min(r, extra)
    return start, start + base + (1 if r < extra else 0)


def shard_sizes(n: int, world: int | None = None) -> list[int]:
    """Rows per rank for :func:`shard_range`'s layout."""
    w = world_size() if world is None else int(world)
    return [b - a for a, b in (shard_range(n, r, w) for r in range(w))]


def comm_device() -> torch.device:
    """Device of tensors handed to collectives: the current CUDA device with NCCL, else CPU."""
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_distributed():
        dist.barrier()


def all_gather_sizes(n_local: int) -> list[int]:
    """Every rank's ``n_local``, in rank order (``[n_local]`` in a single process)."""
    if not is_distributed():
        return [int(n_local)]
    t = torch.tensor([int(n_local)], dtype=torch.int64, device=comm_device())
    out = [torch.zeros_like(t) for _ in range(world_size())]
    dist.all_gather(out, t)
    return [int(v.item()) for v in out]


def all_gather_rows(local: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's tensor along dim 0, in rank order (shards may differ in length).

    Each shard is padded to the longest one for the collective and trimmed
    afterwards, so the result is bit-identical to the concatenation.  Trailing
    dimensions and dtype must agree across ranks.  The result is on ``local``'s
    device.  In a single process ``local`` is returned unchanged.
    """
    if not is_distributed():
        return local
    sizes = all_gather_sizes(int(local.shape[0]))
    longest = max(sizes)
    dev = comm_device()
    buf = torch.zeros((longest, *local.shape[1:]), dtype=local.dtype, device=dev)
    buf[: local.shape[0]] = local.to(dev)
    parts = [torch.empty_like(buf) for _ in sizes]
    dist.all_gather(parts, buf)
    return torch.cat([p[:s] for p, s in zip(parts, sizes)]).to(local.device)


def broadcast_object(obj: T | None, src: int = 0) -> T:
    """``obj`` of rank ``src`` on every rank (pickled; for small objects).  Identity in a single process.

    Ranks other than ``src`` may pass None (their ``obj`` is ignored); the result has rank ``src``'s type.
    """
    if not is_distributed():
        return obj  # type: ignore[return-value]  # single process: obj is rank src's
    box = [obj if rank() == src else None]
    dist.broadcast_object_list(box, src=src, device=comm_device() if dist.get_backend() == "nccl" else None)
    return box[0]  # type: ignore[return-value]


@overload
def on_main_process(fn: Callable[..., T], *args: Any, share_result: Literal[True], **kwargs: Any) -> T: ...


@overload
def on_main_process(fn: Callable[..., T], *args: Any, share_result: bool = ..., **kwargs: Any) -> T | None: ...


def on_main_process(fn: Callable[..., T], *args: Any, share_result: bool = False, **kwargs: Any) -> T | None:
    """Run ``fn`` on rank 0 only (writing files, asking a person), then continue together.

    Every rank must call this at the same point.  Rank 0 runs ``fn``; its
    result is returned on rank 0, and on every rank with ``share_result=True``
    (broadcast, pickled), else None elsewhere.  If ``fn`` raises on rank 0,
    every rank raises: rank 0 the original exception, the others a copy of it
    (or a :class:`RuntimeError` naming it when it cannot be pickled), so no
    rank is left waiting in a later collective.  In a single process this is
    just ``fn(*args, **kwargs)``.
    """
    if not is_distributed():
        return fn(*args, **kwargs)
    result: T | None = None
    error: BaseException | None = None
    if rank() == 0:
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised below on every rank
            error = exc
    if rank() == 0:
        outcome: Any = ("error", _portable(error)) if error is not None else ("ok", result if share_result else None)
    else:
        outcome = None
    kind, value = broadcast_object(outcome)
    if error is not None:
        raise error
    if kind == "error":
        raise value
    return result if rank() == 0 else value


def _portable(error: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else a RuntimeError naming it."""
    import pickle

    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001
        return RuntimeError(f"rank 0 failed: {type(error).__name__}: {error}")


def cleanup(*, wait: bool = True) -> None:
    """Destroy the default process group if one exists, after a barrier.

    Parameters
    ----------
    wait : bool
        Call a barrier first (default), so that no rank destroys the group
        while another still has a collective in flight, and so that gloo's
        worker threads have released the last tensors they were handed
        before the process goes on to exit.  Without it a rank was killed by
        SIGABRT ("terminate called without an active exception") at
        interpreter exit: a gloo worker thread dropped the last reference to
        an all-reduce's tensors after ``Py_Finalize`` had started, could not
        take the GIL to free their Python objects, and was unwound through a
        ``noexcept`` destructor (see ``docs/distributed.md``, "Process-group
        teardown").  Pass ``wait=False`` on an error path where the other
        ranks may never reach this call.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if wait and dist.get_world_size() > 1:
            dist.barrier()
    finally:
        dist.destroy_process_group()


def broadcast_module(module: torch.nn.Module, src: int = 0) -> None:
    """Copy ``src``'s parameters and buffers to every rank (what DDP does when it wraps a module)."""
    if not is_distributed():
        return
    dev = comm_device()
    with torch.no_grad():
        for t in module.state_dict().values():
            if not isinstance(t, torch.Tensor) or t.numel() == 0:
                continue
            buf = t.detach().to(dev)
            dist.broadcast(buf, src=src)
            if buf.data_ptr() != t.data_ptr():
                t.copy_(buf.to(t.device))


def all_reduce_gradients(params: list[torch.nn.Parameter]) -> None:
    """Sum the gradients of ``params`` over ranks, in place (one flat all-reduce).

    Deprecated: the trainer now trains under ``DistributedDataParallel``
    (:class:`activelearn.steps.ParallelStep`), which averages gradients in
    its backward; this helper is kept for code that called it and will be
    removed in a later release.

    Each rank is expected to have scaled its loss by its share of the global
    batch, so the sum is the gradient of the global batch mean (the average
    DDP computes, weighted by shard size).  A parameter with no gradient on
    one rank counts as zero there; a parameter with no gradient on every rank
    keeps ``grad = None`` (so optimisers skip it, as in one process).
    """
    warnings.warn(
        "all_reduce_gradients is deprecated: wrap the module in torch.nn.parallel.DistributedDataParallel "
        "(the trainer does, see activelearn.steps.ParallelStep)",
        DeprecationWarning,
        stacklevel=2,
    )
    if not is_distributed() or not params:
        return
    dev = comm_device()
    flags = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=dev)
    dist.all_reduce(flags)
    used = [p for p, f in zip(params, flags.tolist()) if f > 0]
    if not used:
        return
    dtype = torch.float64 if any(p.dtype == torch.float64 for p in used) else torch.float32
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).to(dev, dtype) for p in used])
    dist.all_reduce(flat)
    offset = 0
    for p in used:
        n = p.numel()
        g = flat[offset : offset + n].view_as(p).to(p.device, p.dtype)
        if p.grad is None:
            p.grad = g.clone()
        else:
            p.grad.copy_(g)
        offset += n


def all_reduce_sum(values: list[float]) -> list[float]:
    """Element-wise sum of a few floats over ranks (float64; identity in a single process)."""
    if not is_distributed():
        return [float(v) for v in values]
    t = torch.tensor(values, dtype=torch.float64, device=comm_device())
    dist.all_reduce(t)
    return t.cpu().tolist()
