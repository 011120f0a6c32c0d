"""k-center greedy (Core-set) selection with memory bounded by a chunk size.

The greedy of Sener & Savarese (2018): keep, for every row, its distance to the
nearest center; repeatedly pick the row farthest from all centers and make it a
center.  Two exact implementations are provided:

``plain``
    One pass over the whole pool per pick (``N x d`` multiply-adds per pick).
``pruned``
    The same picks by lazy evaluation (:mod:`activelearn.ops._kcenter_lazy`):
    a row's min-distance only shrinks as centers are added, so only the rows
    whose (stale) bound is near the top are brought up to date, in blocks, as
    matrix-matrix products against the centers they missed that the triangle
    inequality cannot rule out; near-ties are re-decided with the plain
    kernel's own arithmetic.

Neither ever builds an ``N x N`` or ``N x L`` matrix: distances to many
centers are computed in ``row chunk x center chunk`` blocks keeping only a
running minimum, so memory is ``O(N)`` plus one block.

Distances
---------
``"euclidean"``: ``sqrt(max(|x|^2 + |c|^2 - 2 x.c, 0))``.
``"cosine"``: ``1 - cos(x, c)`` computed on L2-normalised rows (an all-zero row
is treated as the zero vector, i.e. at cosine distance 1 from everything).
Since ``|x - c|^2 = 2 (1 - cos(x, c))`` for unit vectors, Euclidean and cosine
distances are monotone functions of each other on L2-normalised features, so
they give the same greedy picks there (up to floating-point rounding of
near-ties).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable

import numpy as np
import torch

from .._validation import (
    as_feature_tensor,
    as_index_array,
    check_choice,
    check_positive_int,
    resolve_device,
)
from ..exceptions import InvalidInputError, InvalidParameterError
from ._kcenter_lazy import lazy_loop

__all__ = ["kcenter_greedy", "min_distances"]

_METRICS: tuple[str, ...] = ("euclidean", "cosine")
_METHODS: tuple[str, ...] = ("auto", "plain", "pruned")

#: Matrix-vector products are evaluated on blocks whose row count is a multiple
#: of this, which makes MKL's per-row results independent of which other rows
#: are in the block (needed for ``pruned`` to reproduce ``plain`` bit for bit).
_ROW_ALIGN = 16
#: Upper bound on the number of entries of one ``rows x centers`` distance block.
_BLOCK_ELEMS = 1 << 24
#: ``method="auto"`` uses ``pruned`` once one full pass (candidate rows x d
#: multiply-adds) reaches this size.  Measured with benchmarks/kcenter_auto.py
#: (2-core CPU, 1 thread, 100 Gaussian blobs, budget 1,000; CPU-time ratio plain /
#: pruned, results_kcenter_cpu.md): 40,000 x 64 (2.6e6): 0.73; 100,000 x 32
#: (3.2e6): 1.12; 50,000 x 128 (6.4e6): 4.9; 400,000 x 16 (6.4e6): 1.8;
#: 20,000 x 512 (1e7): 4.0; 200,000 x 64 (1.3e7): 3.7; 1,000,000 x 512: 24.
#: The break-even is near 3e6 whatever d (below it a pass is cheaper than a lazy
#: pick's bookkeeping, tens of small torch ops); 5e6 leaves a margin.
_AUTO_MIN_WORK = 5_000_000


# --------------------------------------------------------------------------- #
# Distance geometry
# --------------------------------------------------------------------------- #
class _Geometry:
    """Features on a device plus per-row auxiliaries and distance kernels.

    Parameters
    ----------
    X : torch.Tensor
        ``N x d`` features (already validated, on the working device).
    metric : str
        ``"euclidean"`` or ``"cosine"``.
    chunk_size : int
        Rows per block.
    low_precision : bool
        Store ``X`` in bfloat16 (CUDA only; decided by the caller).
    """

    def __init__(self, X: torch.Tensor, metric: str, chunk_size: int, low_precision: bool = False) -> None:
        self.metric = metric
        self.chunk = chunk_size
        self.cdtype = torch.float64 if X.dtype == torch.float64 else torch.float32
        self.X = X.to(torch.bfloat16) if low_precision else X
        self.n, self.d = int(X.shape[0]), int(X.shape[1])
        self.device = X.device
        self.aux = torch.empty(self.n, dtype=self.cdtype, device=self.device)
        for s in range(0, self.n, chunk_size):
            self.aux[s : s + chunk_size] = self.row_aux(self.X[s : s + chunk_size])

    # ---- per-row auxiliaries -------------------------------------------------
    def row_aux(self, A: torch.Tensor) -> torch.Tensor:
        """Squared norms (euclidean) or inverse norms (cosine) of the rows of ``A``."""
        # squares in cache-sized sub-blocks (a chunk-sized temporary would go through main memory)
        step = max(1, (1 << 20) // max(1, A.shape[1]))
        parts = [(a * a).sum(dim=1) for a in A.to(self.cdtype).split(step)]
        sq = parts[0] if len(parts) == 1 else torch.cat(parts)
        if self.metric == "euclidean":
            return sq
        # exact inverse norms however small the row (a clamp would shrink tiny rows' self-similarity);
        # all-zero rows have no direction and get 0 (cosine distance 1 to everything)
        return torch.where(sq > 0, sq.clamp_min(torch.finfo(self.cdtype).tiny).rsqrt(), torch.zeros_like(sq))

    # ---- kernels -------------------------------------------------------------
    def _finish(self, dots: torch.Tensor, a_aux: torch.Tensor, c_aux: torch.Tensor) -> torch.Tensor:
        dots = dots.to(self.cdtype)
        if self.metric == "euclidean":
            return (a_aux + c_aux - 2.0 * dots).clamp_min_(0.0).sqrt_()
        return (1.0 - dots * a_aux * c_aux).clamp_min_(0.0)

    def dist_vec(self, A: torch.Tensor, a_aux: torch.Tensor, c: torch.Tensor, c_aux: torch.Tensor) -> torch.Tensor:
        """Distances of the rows of ``A`` (``m x d``) to one vector ``c`` (``d``)."""
        m = A.shape[0]
        m16 = m - m % _ROW_ALIGN
        parts = []
        if m16:
            parts.append(A[:m16] @ c)
        if m16 < m:  # pad the tail so every product sees an aligned block
            tail = torch.cat([A[m16:], A.new_zeros(_ROW_ALIGN - (m - m16), A.shape[1])])
            parts.append((tail @ c)[: m - m16])
        dots = parts[0] if len(parts) == 1 else torch.cat(parts)
        return self._finish(dots, a_aux, c_aux)

    def dist_block(self, A: torch.Tensor, a_aux: torch.Tensor, C: torch.Tensor, c_aux: torch.Tensor) -> torch.Tensor:
        """``m x k`` distances between the rows of ``A`` and the rows of ``C``."""
        return self._finish(A @ C.T, a_aux[:, None], c_aux[None, :])

    def prep_centers(self, C: torch.Tensor, c_aux: torch.Tensor) -> torch.Tensor:
        """Centers as :meth:`min_block` wants them (cosine: scaled by their inverse norms)."""
        return C * c_aux[:, None].to(C.dtype) if self.metric == "cosine" else C

    def min_block(self, A: torch.Tensor, a_aux: torch.Tensor, Cs: torch.Tensor, c_aux: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Min distance of each row of ``A`` to the centers ``Cs`` (from :meth:`prep_centers`) and its argmin.

        Only the minimum is finished: euclidean ``sqrt(|x|^2 + min_c (|c|^2 -
        2 x.c))``, cosine ``1 - |x|^-1 max_c x.c/|c|``; one pass over the
        ``rows x centers`` block instead of the five of :meth:`dist_block`.
        Rounding differs from :meth:`dist_vec` by a few units in the last place.
        """
        cd = self.cdtype
        if self.metric == "euclidean":
            if A.dtype == cd:
                T = torch.addmm(c_aux[None, :], A, Cs.T, alpha=-2.0)
            else:
                T = (A @ Cs.T).to(cd).mul_(-2.0).add_(c_aux[None, :])
            vmin, arg = T.min(dim=1)
            return (vmin + a_aux).clamp_min_(0.0).sqrt_(), arg
        smax, arg = (A @ Cs.T).to(cd).max(dim=1)
        return (1.0 - smax * a_aux).clamp_min_(0.0), arg

    def to_metric(self, dist: torch.Tensor) -> torch.Tensor:
        """Map distances to a true metric (chord length for cosine) for the triangle inequality."""
        if self.metric == "euclidean":
            return dist
        return (2.0 * dist.clamp_min(0.0)).sqrt()

    # ---- whole-pool operations ------------------------------------------------
    def update_all(self, mind: torch.Tensor, c_row: int) -> None:
        """``mind = min(mind, d(., X[c_row]))`` over every row, chunk by chunk."""
        c = self.X[c_row]
        c_aux = self.aux[c_row]
        for s in range(0, self.n, self.chunk):
            e = min(s + self.chunk, self.n)
            d = self.dist_vec(self.X[s:e], self.aux[s:e], c, c_aux)
            seg = mind[s:e]
            torch.minimum(seg, d, out=seg)

    def dist_rows(self, rows: torch.Tensor, c: torch.Tensor, c_aux: torch.Tensor) -> torch.Tensor:
        """Distances of the rows ``X[rows]`` to the vector ``c`` (gathered chunk by chunk)."""
        out = torch.empty(rows.numel(), dtype=self.cdtype, device=self.device)
        for s in range(0, rows.numel(), self.chunk):
            r = rows[s : s + self.chunk]
            out[s : s + r.numel()] = self.dist_vec(self.X.index_select(0, r), self.aux.index_select(0, r), c, c_aux)
        return out

    def min_over_centers(
        self,
        get_centers: Callable[[int, int], tuple[torch.Tensor, torch.Tensor]],
        n_centers: int,
        want_assign: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Running min (and argmin) of each row's distance over ``n_centers`` centers.

        Centers are fetched ``get_centers(t0, t1) -> (C, c_aux)`` one block at a
        time; each block is compared with row chunks, so memory is one
        ``chunk x center-chunk`` block plus ``O(N)``.
        """
        cchunk = max(1, min(self.chunk, _BLOCK_ELEMS // self.chunk))
        best = torch.full((self.n,), math.inf, dtype=self.cdtype, device=self.device)
        assign = torch.zeros(self.n, dtype=torch.int64, device=self.device) if want_assign else None
        for t0 in range(0, n_centers, cchunk):
            t1 = min(t0 + cchunk, n_centers)
            C, c_aux = get_centers(t0, t1)
            Cs = self.prep_centers(C, c_aux)
            for s in range(0, self.n, self.chunk):
                e = min(s + self.chunk, self.n)
                vals, arg = self.min_block(self.X[s:e], self.aux[s:e], Cs, c_aux)
                seg = best[s:e]
                better = vals < seg
                seg[better] = vals[better]
                if assign is not None:
                    assign[s:e][better] = arg[better] + t0
        return best, assign


# --------------------------------------------------------------------------- #
# Greedy loops
# --------------------------------------------------------------------------- #
def _plain_loop(geo: _Geometry, mind: torch.Tensor, picks: list[int], budget: int) -> None:
    """Plain greedy: one full pass per pick.  Appends to ``picks`` in place."""
    while len(picks) < budget:
        p = int(torch.argmax(mind))  # first maximal index: ties go to the lowest index
        picks.append(p)
        mind[p] = -math.inf
        if len(picks) < budget:
            geo.update_all(mind, p)


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #
def _working_device(features: Any, device: str | torch.device | None) -> torch.device:
    if device is None:
        return features.device if isinstance(features, torch.Tensor) else torch.device("cpu")
    return resolve_device(device)


def _prepare(features: Any, dev: torch.device) -> torch.Tensor:
    """Validate and convert the features; large float arrays are checked chunk by chunk.

    A whole-array ``torch.isfinite`` would allocate about 1.5x the data
    (``abs`` copy plus two boolean masks), so big 2-D float inputs are
    converted without a copy and scanned for NaN/Inf one block at a time.
    On CPU a float ``numpy.memmap`` (e.g. from
    :func:`activelearn.embeddings.write_embeddings`) is therefore used in
    place: blocks are paged in from disk as the greedy reads them.
    """
    big = (
        isinstance(features, (torch.Tensor, np.ndarray))
        and features.ndim == 2
        and features.shape[0] > 0
        and math.prod(features.shape) > _BLOCK_ELEMS
        and (features.is_floating_point() if isinstance(features, torch.Tensor) else features.dtype.kind == "f")
    )
    with warnings.catch_warnings():
        # a read-only numpy.memmap is only read here: torch's "not writable" warning does not apply
        warnings.filterwarnings("ignore", message=".*not writable.*", category=UserWarning)
        if not big:
            X = as_feature_tensor(features, "features", device=dev).detach()
        else:
            t = features.detach() if isinstance(features, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(features))
            X = t.to(dev)
    if big:
        step = max(1, _BLOCK_ELEMS // max(1, X.shape[1]))
        bad = 0
        for s in range(0, X.shape[0], step):
            block = X[s : s + step]
            # one fused sum per block; only a non-finite sum (NaN/Inf, or an overflow) needs the row-wise check
            if not bool(torch.isfinite(block.sum())):
                bad += int((~torch.isfinite(block)).any(dim=1).sum())
        if bad:
            raise InvalidInputError(f"features holds NaN or Inf in {bad} row(s); clean or impute them first")
    if X.dtype != torch.float64 and X.dtype != torch.float32:
        X = X.to(torch.float32)
    return X.contiguous()


def kcenter_greedy(
    features: Any,
    budget: int,
    *,
    labeled: Any = None,
    metric: str = "euclidean",
    chunk_size: int = 65536,
    device: str | torch.device | None = None,
    seed: int | np.random.Generator | None = None,
    method: str = "auto",
    low_precision: bool = False,
) -> np.ndarray:
    """Select ``budget`` rows by k-center greedy (the Core-set strategy).

    Every pick is the row whose distance to its nearest center (labeled rows
    and earlier picks) is largest; ties go to the lowest row index.  Labeled
    rows and picked rows are never picked again, even when duplicate points
    exist.

    Parameters
    ----------
    features : array_like or torch.Tensor
        ``N x d`` features.  float64 input is computed in float64, any other
        dtype in float32.
    budget : int
        Number of rows to pick, ``1 <= budget <= N - |labeled|``.
    labeled : array_like of int or bool, optional
        Indices, or a boolean mask of length ``N``, of rows that are already
        centers.  With no labeled rows the first center is a seeded random
        pick: ``np.random.default_rng(seed).integers(n_candidates)`` indexes
        the (ascending) non-labeled rows.
    metric : {"euclidean", "cosine"}
        Euclidean distance, or cosine distance ``1 - cos`` of L2-normalised
        rows.  On L2-normalised features both give the same picks.
    chunk_size : int
        Rows per block; memory is ``O(N)`` plus one ``chunk_size x d`` block
        (and one ``chunk_size x min(chunk_size, 2**24 // chunk_size)``
        distance block when there are labeled rows).
    device : str or torch.device, optional
        Where to compute.  Default: the tensor's own device for a tensor,
        else CPU.
    seed : int or numpy.random.Generator, optional
        Seed of the first random center (only used without labeled rows).
    method : {"auto", "plain", "pruned"}
        ``"plain"`` does one pass over the pool per pick.  ``"pruned"`` gives
        the same picks by lazy evaluation: every row keeps its min-distance
        to the centers it has been compared with (an upper bound of the
        current one, as distances only shrink) and only the rows whose bound
        is near the top are compared with the centers they missed, in
        matrix-matrix blocks, skipping a center ``c`` when
        ``d(a, c) >= 2 d(x, a)`` for the row's nearest known center ``a``
        (triangle inequality, with a margin for rounding); it is much faster
        on clustered features (see Notes).  ``"auto"`` uses ``"pruned"``
        when ``n_candidates * d >= 5e6`` (e.g. 10,000 rows at d = 512; the
        measured break-even, see ``_AUTO_MIN_WORK``), ``budget > 1`` and
        ``|labeled| <= n_candidates / 4``, else ``"plain"``.
    low_precision : bool
        Store features in bfloat16 on CUDA for speed (distances are still
        accumulated and compared in float32).  Picks may then differ from the
        exact ones.  Ignored with a warning on CPU.

    Returns
    -------
    numpy.ndarray
        ``budget`` int64 row indices in pick order.

    Raises
    ------
    InvalidParameterError
        Bad ``budget``, ``metric``, ``method``, ``chunk_size`` or ``device``,
        or ``budget`` larger than the number of non-labeled rows.
    InvalidInputError
        Features not 2-D, empty, or holding NaN/Inf; bad ``labeled``.

    Notes
    -----
    Speed of ``"pruned"``: while the first picks each land in a new cluster
    no center can be ruled out and every row is eventually compared with
    the centers picked before its own cluster got one (matrix-matrix
    products, several times faster per distance than plain's passes);
    afterwards a pick only touches the few rows near the top of the
    ranking.  On 1,000,000 x 512 clustered features with 1,000 picks it is
    about 30x faster than ``"plain"`` (benchmarks/results_kcenter_cpu.md).
    The laziness itself needs no clusters (only rows near the top of the
    ranking are refreshed): on isotropic Gaussian noise, 100,000 x 512, it
    was still 15x faster than plain; at small ``N * d`` its per-pick
    bookkeeping dominates (see ``_AUTO_MIN_WORK``).  Memory
    of either method is ``O(N)`` plus one block: ``"pruned"`` keeps five
    length-``N`` arrays (value, upper bound, stamp, nearest center; the
    labeled minimum when there are labeled rows), one gathered block of at
    most ``chunk_size`` rows, and a center-to-center table when
    ``(|labeled| + budget)^2 <= 2**24``.

    In exact arithmetic ``plain`` and ``pruned`` pick the same rows.  In
    floating point ``pruned`` computes bounds with matrix-matrix products,
    whose rounding differs from plain's matrix-vector products, so each of
    its values carries a rigorous error bound (``gamma_d |x| |c|`` on a dot
    product) and whenever two candidates' intervals overlap the winner is
    decided on plain's own values (one matrix-vector product per row, with
    the centers as the matrix rows: MKL returns the same per-row result
    either way on 16-aligned blocks).  On CPU the two methods therefore
    agree bit for bit, ties included (lowest index); on other BLAS backends
    a value may differ in the last bit, which can only matter for
    near-exact ties.
    """
    budget = check_positive_int("budget", budget)
    metric = check_choice("metric", metric, _METRICS)
    method = check_choice("method", method, _METHODS)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    dev = _working_device(features, device)
    X = _prepare(features, dev)
    n = int(X.shape[0])
    lab = np.zeros(0, dtype=np.int64) if labeled is None else as_index_array(labeled, "labeled", n=n)
    n_cand = n - lab.size
    if budget > n_cand:
        raise InvalidParameterError(
            f"budget={budget} exceeds the {n_cand} non-labeled rows available "
            f"(N={n}, {lab.size} labeled); pass budget <= {n_cand}"
        )
    if low_precision and dev.type != "cuda":
        warnings.warn("low_precision=True is only used on CUDA; computing exactly on CPU", RuntimeWarning, stacklevel=2)
        low_precision = False
    geo = _Geometry(X, metric, chunk_size, low_precision=bool(low_precision))

    if method == "auto":
        big = n_cand * X.shape[1] >= _AUTO_MIN_WORK
        # each pruned pick also compares the new center with every center: not worth it
        # when the labeled centers alone are a sizeable fraction of the pool
        method = "pruned" if (big and budget > 1 and 4 * lab.size <= n_cand) else "plain"

    picks: list[int] = []
    if lab.size == 0:
        first = int(np.random.default_rng(seed).integers(n_cand))
        p0 = first  # no labeled rows: the candidates are all rows
        picks.append(p0)
        mind = torch.full((n,), math.inf, dtype=geo.cdtype, device=dev)
        mind[p0] = -math.inf
        if budget == 1:
            return np.asarray(picks, dtype=np.int64)
        geo.update_all(mind, p0)
        assign = torch.zeros(n, dtype=torch.int64, device=dev)
        centers = [p0]
    else:
        lab_t = torch.as_tensor(lab, dtype=torch.int64, device=dev)

        def get_centers(t0: int, t1: int) -> tuple[torch.Tensor, torch.Tensor]:
            r = lab_t[t0:t1]
            return geo.X.index_select(0, r), geo.aux.index_select(0, r)

        mind, assign_opt = geo.min_over_centers(get_centers, lab.size, want_assign=method == "pruned")
        mind[lab_t] = -math.inf
        assign = assign_opt if assign_opt is not None else torch.zeros(0, dtype=torch.int64, device=dev)
        centers = lab.tolist()

    if method == "plain":
        _plain_loop(geo, mind, picks, budget)
    else:
        lazy_loop(geo, mind, assign, centers, picks, budget, labeled=lab.size > 0)
    return np.asarray(picks, dtype=np.int64)


def min_distances(
    features: Any,
    centers: Any,
    *,
    metric: str = "euclidean",
    chunk_size: int = 65536,
    device: str | torch.device | None = None,
) -> np.ndarray | torch.Tensor:
    """Distance of every row to its nearest center, computed block-wise.

    Parameters
    ----------
    features : array_like or torch.Tensor
        ``N x d`` features.
    centers : array_like or torch.Tensor
        Either 1-D row indices (or a boolean mask of length ``N``) into
        ``features``, or a ``K x d`` matrix of center features.
    metric : {"euclidean", "cosine"}
        As in :func:`kcenter_greedy`.
    chunk_size : int
        Rows per block; memory is ``O(N)`` plus one block.
    device : str or torch.device, optional
        Where to compute; default the tensor's own device, else CPU.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        Length-``N`` distances (float64 for float64 input, else float32): a
        tensor on the working device if ``features`` is a tensor, else a
        numpy array.  With no centers every distance is ``+inf``.
    """
    metric = check_choice("metric", metric, _METRICS)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    dev = _working_device(features, device)
    X = _prepare(features, dev)
    geo = _Geometry(X, metric, chunk_size)
    c_arr = centers if isinstance(centers, torch.Tensor) else np.asarray(centers)
    if c_arr.ndim == 2:
        C = as_feature_tensor(centers, "centers", device=dev, dtype=X.dtype, allow_empty=True).contiguous()
        if C.shape[1] != X.shape[1]:
            raise InvalidInputError(
                f"centers must have {X.shape[1]} columns like features, got shape {tuple(C.shape)}"
            )

        def get_centers(t0: int, t1: int) -> tuple[torch.Tensor, torch.Tensor]:
            block = C[t0:t1]
            return block, geo.row_aux(block)

        n_centers = int(C.shape[0])
    else:
        idx = torch.as_tensor(as_index_array(centers, "centers", n=geo.n), device=dev)

        def get_centers(t0: int, t1: int) -> tuple[torch.Tensor, torch.Tensor]:
            r = idx[t0:t1]
            return geo.X.index_select(0, r), geo.aux.index_select(0, r)

        n_centers = int(idx.numel())
    if metric == "euclidean":
        best = _min_euclidean_centered(geo, get_centers, n_centers)
    else:
        best, _ = geo.min_over_centers(get_centers, n_centers, want_assign=False)
    if isinstance(features, torch.Tensor):
        return best
    return best.cpu().numpy()


def _min_euclidean_centered(geo: _Geometry, get_centers: Callable[[int, int], tuple[torch.Tensor, torch.Tensor]], n_centers: int) -> torch.Tensor:
    """Euclidean min distances computed on data shifted by the centers' mean.

    Distances do not change under a shift, but the rounding of
    ``|x|^2 + |c|^2 - 2 x.c`` does: it is relative to the norms, so data far
    from the origin (a 1e6 offset in float32) would give a point a distance of
    hundreds to itself.  Relative to the centers' mean the norms are the
    spread of the data, and exact duplicates come out at 0.  Memory: one row
    chunk and one center block at a time, plus ``O(N)``.
    """
    best = torch.full((geo.n,), math.inf, dtype=geo.cdtype, device=geo.device)
    if n_centers == 0:
        return best
    cchunk = max(1, min(geo.chunk, _BLOCK_ELEMS // geo.chunk))
    total = torch.zeros(geo.d, dtype=torch.float64, device=geo.device)
    for t0 in range(0, n_centers, cchunk):
        total += get_centers(t0, min(t0 + cchunk, n_centers))[0].to(torch.float64).sum(dim=0)
    mu = (total / n_centers).to(geo.cdtype)
    for t0 in range(0, n_centers, cchunk):
        C = get_centers(t0, min(t0 + cchunk, n_centers))[0].to(geo.cdtype) - mu
        c_sq = (C * C).sum(dim=1)
        for s in range(0, geo.n, geo.chunk):
            A = geo.X[s : s + geo.chunk].to(geo.cdtype) - mu
            d2 = (A * A).sum(dim=1)[:, None] + c_sq[None, :] - 2.0 * (A @ C.T)
            seg = best[s : s + geo.chunk]
            torch.minimum(seg, d2.min(dim=1).values.clamp_min_(0.0).sqrt_(), out=seg)
    return best
