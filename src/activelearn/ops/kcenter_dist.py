"""k-center greedy over a pool sharded across ``torch.distributed`` ranks.

Each rank holds one contiguous shard of the feature rows (rank order, as laid
out by :func:`activelearn.distributed.shard_range`) and that shard's
min-distance vector; nothing of size ``N x d`` is ever gathered.  One pick is:

1. every rank takes the maximum of its min-distance vector and the lowest
   global index attaining it;
2. one ``all_gather`` of these ``(value, index)`` pairs gives every rank the
   global winner: the largest value, ties to the lowest global index, exactly
   like ``torch.argmax`` over the whole vector in :func:`kcenter_greedy`;
3. the owner of the winning row broadcasts its feature (and squared norm or
   inverse norm), and every rank updates its shard's min-distances.

Distances use the same kernels as :func:`activelearn.ops.kcenter_greedy`; the
distances to the initial (labeled) centers are computed on row blocks placed
at the same global positions as in a single process (rows owned by other
ranks are zero-padded), so on CPU the picks equal the single-process picks bit
for bit.  Communication per pick: two floats per rank gathered, ``d + 1``
floats broadcast.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from .. import distributed as D
from .._validation import as_index_array, check_choice, check_positive_int
from ..exceptions import InvalidInputError, InvalidParameterError
from .kcenter import _BLOCK_ELEMS, _Geometry, _prepare, _working_device, kcenter_greedy

__all__ = ["kcenter_greedy_distributed"]

_METRICS = ("euclidean", "cosine")


def _local_tensor(local_features: Any, dev: torch.device) -> torch.Tensor | None:
    """This rank's rows as a float tensor, or None for an empty shard."""
    rows = int(local_features.shape[0]) if hasattr(local_features, "shape") and len(local_features.shape) else len(local_features)
    if rows == 0:
        return None
    return _prepare(local_features, dev)


def _shard_meta(
    X: torch.Tensor | None, local_features: Any, error: Exception | None
) -> tuple[list[int], int, torch.dtype]:
    """Sizes of every shard, the common width and dtype (checked across ranks).

    A rank whose shard was refused (``error``) still takes part, so that every
    rank raises instead of the others waiting in a later collective.
    """
    shape = tuple(getattr(local_features, "shape", ()))
    width = int(X.shape[1]) if X is not None else (int(shape[1]) if len(shape) == 2 else -1)
    is64 = int(X is not None and X.dtype == torch.float64)
    n_local = 0 if X is None else int(X.shape[0])
    meta = torch.tensor([n_local, width, is64, int(error is not None)], dtype=torch.int64, device=D.comm_device())
    parts = [torch.zeros_like(meta) for _ in range(D.world_size())]
    dist.all_gather(parts, meta)
    table = torch.stack(parts).cpu().numpy()
    if error is not None:
        raise error
    failed = np.flatnonzero(table[:, 3]).tolist()
    if failed:
        raise InvalidInputError(f"the features of rank(s) {failed} were refused (see the error on those ranks); fix that shard and run again")
    sizes = table[:, 0].tolist()
    full = table[table[:, 0] > 0]
    if full.size == 0:
        raise InvalidInputError("every rank passed an empty shard; the pool has no rows")
    widths = set(full[:, 1].tolist())
    kinds = set(full[:, 2].tolist())
    if len(widths) != 1:
        raise InvalidInputError(f"ranks hold features of different widths {sorted(widths)}; every shard needs the same columns")
    if len(kinds) != 1:
        raise InvalidInputError("some ranks hold float64 features and others not; convert every shard to the same dtype")
    dtype = torch.float64 if kinds.pop() else torch.float32
    return [int(s) for s in sizes], int(widths.pop()), dtype


class _Shard:
    """One rank's rows, their geometry and min-distances, plus the global layout."""

    def __init__(self, X: torch.Tensor, sizes: list[int], metric: str, chunk: int) -> None:
        self.geo = _Geometry(X, metric, chunk)
        self.sizes = sizes
        self.ends = np.cumsum(sizes)
        self.n = int(self.ends[-1])
        self.rank = D.rank()
        self.off = int(self.ends[self.rank] - sizes[self.rank])
        self.n_local = sizes[self.rank]
        self.dev = X.device
        self.mind = torch.full((self.n_local,), math.inf, dtype=self.geo.cdtype, device=self.dev)

    def owner(self, g: int) -> int:
        return int(np.searchsorted(self.ends, g, side="right"))

    def owns(self, g: int) -> bool:
        return self.off <= g < self.off + self.n_local

    def center(self, g: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Feature row ``g`` and its auxiliary, broadcast from the rank holding it."""
        geo = self.geo
        buf = torch.zeros(geo.d + 1, dtype=geo.cdtype, device=D.comm_device())
        if self.owns(g):
            buf[: geo.d] = geo.X[g - self.off].to(geo.cdtype)
            buf[geo.d] = geo.aux[g - self.off]
        dist.broadcast(buf, src=self.owner(g))
        buf = buf.to(self.dev)
        return buf[: geo.d].to(geo.X.dtype), buf[geo.d]

    def kill(self, g: int) -> None:
        if self.owns(g):
            self.mind[g - self.off] = -math.inf

    def update(self, c: torch.Tensor, c_aux: torch.Tensor) -> None:
        """``mind = min(mind, d(., c))`` over this shard, chunk by chunk."""
        geo = self.geo
        for s in range(0, self.n_local, geo.chunk):
            e = min(s + geo.chunk, self.n_local)
            seg = self.mind[s:e]
            torch.minimum(seg, geo.dist_vec(geo.X[s:e], geo.aux[s:e], c, c_aux), out=seg)

    def argmax(self) -> int:
        """Global row with the largest min-distance; ties go to the lowest global index."""
        pair = torch.tensor([-math.inf, float(self.n)], dtype=torch.float64, device=D.comm_device())
        if self.n_local:
            i = int(torch.argmax(self.mind))
            pair[0] = self.mind[i].double()
            pair[1] = float(self.off + i)
        parts = [torch.empty_like(pair) for _ in self.sizes]
        dist.all_gather(parts, pair)
        table = torch.stack(parts).cpu().numpy()
        top = table[:, 0].max()
        return int(table[table[:, 0] == top, 1].min())

    def init_from_centers(self, lab: np.ndarray) -> None:
        """Min-distance of every local row to the labeled rows ``lab`` (global indices).

        Center blocks are assembled on every rank by a sum all-reduce (each
        rank fills the rows it owns, zeros elsewhere: exact).  Row blocks are
        the single-process blocks ``[k * chunk, (k + 1) * chunk)``, with the
        rows of other ranks zero-padded, so every product sees the same shapes
        and positions as in one process.
        """
        geo, chunk = self.geo, self.geo.chunk
        cchunk = max(1, min(chunk, _BLOCK_ELEMS // chunk))
        lo, hi = self.off, self.off + self.n_local
        for t0 in range(0, lab.size, cchunk):
            rows = lab[t0 : t0 + cchunk]
            buf = torch.zeros(rows.size, geo.d + 1, dtype=geo.cdtype, device=D.comm_device())
            mine = np.flatnonzero((rows >= lo) & (rows < hi))
            if mine.size:
                loc = torch.as_tensor(rows[mine] - lo, device=self.dev)
                pos = torch.as_tensor(mine, device=buf.device)
                buf[pos, : geo.d] = geo.X.index_select(0, loc).to(geo.cdtype).to(buf.device)
                buf[pos, geo.d] = geo.aux.index_select(0, loc).to(buf.device)
            dist.all_reduce(buf)
            buf = buf.to(self.dev)
            C, c_aux = buf[:, : geo.d].to(geo.X.dtype).contiguous(), buf[:, geo.d].contiguous()
            Cs = geo.prep_centers(C, c_aux)  # the same labeled-distance kernel as kcenter_greedy
            for s in range(lo - lo % chunk, hi, chunk):
                e = min(s + chunk, self.n)
                a, b = max(s, lo), min(e, hi)
                if a == s and b == e:
                    A, A_aux = geo.X[s - lo : e - lo], geo.aux[s - lo : e - lo]
                else:
                    A = geo.X.new_zeros(e - s, geo.d)
                    A[a - s : b - s] = geo.X[a - lo : b - lo]
                    A_aux = geo.aux.new_zeros(e - s)
                    A_aux[a - s : b - s] = geo.aux[a - lo : b - lo]
                vals = geo.min_block(A, A_aux, Cs, c_aux)[0][a - s : b - s]
                seg = self.mind[a - lo : b - lo]
                torch.minimum(seg, vals, out=seg)
        own = lab[(lab >= lo) & (lab < hi)] - lo
        if own.size:
            self.mind[torch.as_tensor(own, device=self.dev)] = -math.inf


def kcenter_greedy_distributed(
    local_features: Any,
    budget: int,
    *,
    labeled: Any = None,
    metric: str = "euclidean",
    chunk_size: int = 65536,
    device: str | torch.device | None = None,
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """k-center greedy over features sharded across the ranks of the default process group.

    Gives the same picks as :func:`activelearn.ops.kcenter_greedy` on the
    concatenation of every rank's shard (in rank order), while each rank keeps
    only its own rows and their min-distances.  Every rank must call it with
    the same ``budget``, ``labeled``, ``metric``, ``chunk_size`` and ``seed``.
    Without a process group (or with one process) it is
    ``kcenter_greedy(local_features, ..., method="plain")``.

    Parameters
    ----------
    local_features : array_like or torch.Tensor
        This rank's ``n_r x d`` rows: global rows ``[sum_{q<r} n_q, ... + n_r)``
        (the layout of :func:`activelearn.distributed.shard_range`).  A shard
        may be empty.  A ``numpy.memmap`` is read block by block.
    budget : int
        Number of rows to pick, ``1 <= budget <= N - |labeled|``.
    labeled : array_like of int or bool, optional
        Global indices (or a boolean mask of length ``N``) of the rows that are
        already centers; identical on every rank.  With none, the first center
        is ``np.random.default_rng(seed).integers(N)``.
    metric : {"euclidean", "cosine"}
    chunk_size : int
        Rows per block on each rank; memory per rank is ``O(n_r)`` plus one
        block.
    device : str or torch.device, optional
        Where this rank computes (default: the tensor's device, else CPU).
    seed : int or numpy.random.Generator, optional
        Seed of the first random center (used only without labeled rows).

    Returns
    -------
    numpy.ndarray
        ``budget`` int64 global row indices in pick order, identical on every rank.

    Notes
    -----
    The pruned variant of :func:`kcenter_greedy` is not used here: each rank
    does one pass over its ``N / world`` rows per pick (the picks are the same
    either way).  Per pick the ranks exchange one ``(value, index)`` pair each
    and the winner's ``d + 1`` floats.
    """
    budget = check_positive_int("budget", budget)
    metric = check_choice("metric", metric, _METRICS)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    if not D.is_distributed():
        return kcenter_greedy(
            local_features, budget, labeled=labeled, metric=metric, chunk_size=chunk_size, device=device, seed=seed, method="plain"
        )
    dev = _working_device(local_features, device)
    X, error = None, None
    try:
        X = _local_tensor(local_features, dev)
    except InvalidInputError as exc:  # raised on every rank by _shard_meta
        error = exc
    sizes, width, dtype = _shard_meta(X, local_features, error)
    if X is None:
        X = torch.zeros((0, width), dtype=dtype, device=dev)
    shard = _Shard(X, sizes, metric, chunk_size)
    n = shard.n
    lab = np.zeros(0, dtype=np.int64) if labeled is None else as_index_array(labeled, "labeled", n=n)
    n_cand = n - lab.size
    if budget > n_cand:
        raise InvalidParameterError(
            f"budget={budget} exceeds the {n_cand} non-labeled rows available (N={n}, {lab.size} labeled); pass budget <= {n_cand}"
        )
    picks: list[int] = []
    if lab.size == 0:
        p0 = int(np.random.default_rng(seed).integers(n_cand))
        picks.append(p0)
        shard.kill(p0)
        if budget == 1:
            return np.asarray(picks, dtype=np.int64)
        shard.update(*shard.center(p0))
    else:
        shard.init_from_centers(lab)
    while len(picks) < budget:
        p = shard.argmax()
        picks.append(p)
        shard.kill(p)
        if len(picks) < budget:
            shard.update(*shard.center(p))
    return np.asarray(picks, dtype=np.int64)
