"""Density estimates over feature vectors: Reformer-style LSH (DACS) and exact kNN.

Both return one value per row with *higher = denser*, run batched in torch on
the chosen device and never build an N x N matrix.

* :func:`lsh_density` is the estimate DACS (Kim & Shin, KDD 2022) uses: hash
  the L2-normalised rows with random rotations, sort by bucket, cut the sorted
  order into chunks, and sum ``sigmoid(cos) * cos`` over each row's chunk
  mates and the previous chunk.  Memory O(N * chunk).
* :func:`knn_density` is the exact reference (DACS Eq. 2): minus the mean
  distance to the ``k`` nearest other rows.  Memory O(chunk_size * N).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch
import torch.nn.functional as F

from .._validation import as_feature_tensor, check_choice, check_positive_int, resolve_device
from ..exceptions import InvalidParameterError

__all__ = ["lsh_density", "knn_density"]

# Largest similarity block (elements) materialised at once: 2**24 floats = 64 MiB in float32.
_MAX_BLOCK = 1 << 24


def _normalise(z: torch.Tensor) -> torch.Tensor:
    """Rows divided by their L2 norm; all-zero rows stay zero."""
    norms = torch.linalg.vector_norm(z, dim=1, keepdim=True)
    return z / torch.where(norms > 0, norms, torch.ones_like(norms))


def _check_seed(seed: Any) -> int | None:
    if seed is None:
        return None
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise InvalidParameterError(f"seed must be an int or None, got {seed!r}")
    return int(seed)


def _lsh_buckets(zn: torch.Tensor, n_buckets: int, generator: torch.Generator) -> torch.Tensor:
    """Reformer angular-LSH bucket of each (normalised) row.

    Draws ``R`` of shape ``(d, n_buckets // 2)`` in float64 from ``generator``
    (a CPU generator, so the draw is the same on every device and for every
    dtype), casts it to ``zn``'s dtype and device, and returns ``argmax([zn @ R, -(zn @ R)], dim=1)`` as int64
    (computed as the larger of ``max(zn @ R)`` and ``-min(zn @ R)``, first index on ties, without
    materialising the concatenation).

    Parameters
    ----------
    zn : torch.Tensor, shape (N, d)
        Rows, normally L2-normalised.
    n_buckets : int
        Even number of buckets.
    generator : torch.Generator
        CPU generator the Gaussian matrix is drawn from (advanced by the draw).

    Returns
    -------
    torch.Tensor of int64, shape (N,)
        Bucket ids in ``[0, n_buckets)``, computed in row blocks of at most
        ``2**24 / n_buckets`` rows.
    """
    r = torch.randn(zn.shape[1], n_buckets // 2, generator=generator, dtype=torch.float64)
    r = r.to(device=zn.device, dtype=zn.dtype)
    out = torch.empty(zn.shape[0], dtype=torch.int64, device=zn.device)
    rows = max(1, _MAX_BLOCK // n_buckets)  # row blocks: memory O(block * n_buckets), not O(N * n_buckets)
    half = n_buckets // 2
    for r0 in range(0, zn.shape[0], rows):
        proj = zn[r0 : r0 + rows] @ r
        # argmax over [proj, -proj] without building it: the first half wins ties (first maximal index)
        hi, hi_idx = proj.max(dim=1)
        lo, lo_idx = proj.min(dim=1)
        out[r0 : r0 + rows] = torch.where(hi >= -lo, hi_idx, lo_idx + half)
    return out


#: chunks of more rows than this are processed in row panels using the symmetry of cos
_PANEL_MIN_M = 256
#: rows per panel (a panel holds at most ``_PANEL_ROWS x 2m`` similarities)
_PANEL_ROWS = 256


def _chunk_sums(zs: torch.Tensor, m: int) -> torch.Tensor:
    """Per sorted row: sum of silu(cos) over chunk mates (self excluded) and the previous chunk.

    ``zs`` holds the rows in sorted order, zero-padded to ``n_chunks * m`` rows
    (padding rows are zero, so their cosine and contribution are exactly 0).
    Small chunks are batched (``bmm`` over groups of chunks); large chunks
    (``m > _PANEL_MIN_M``) go through :func:`_panel_sums`, which evaluates each
    within-chunk pair once (``silu(cos_ij)`` is symmetric) and so computes
    ``1.5 m^2`` instead of ``2 m^2`` terms per chunk.
    """
    total, d = zs.shape
    n_chunks = total // m
    q = zs.view(n_chunks, m, d)
    prev = (torch.arange(n_chunks, device=zs.device) - 1) % n_chunks
    look_back = n_chunks > 1  # a single chunk would look back at itself
    width = 2 * m if look_back else m
    if m > _PANEL_MIN_M or m * width > _MAX_BLOCK:
        return _panel_sums(q, prev, look_back)
    out = torch.zeros(n_chunks, m, dtype=zs.dtype, device=zs.device)
    diag = torch.arange(m, device=zs.device)
    group = max(1, _MAX_BLOCK // (m * width))
    for c0 in range(0, n_chunks, group):
        c1 = min(n_chunks, c0 + group)
        qc = q[c0:c1]
        keys = torch.cat([qc, q[prev[c0:c1]]], dim=1) if look_back else qc
        f = F.silu(torch.bmm(qc, keys.transpose(1, 2)))  # silu(x) = x * sigmoid(x)
        f[:, diag, diag] = 0  # self-pairs
        out[c0:c1] = f.sum(dim=2)
    return out.reshape(-1)


def _panel_sums(q: torch.Tensor, prev: torch.Tensor, look_back: bool) -> torch.Tensor:
    """:func:`_chunk_sums` for large chunks, in row panels of ``_PANEL_ROWS`` rows.

    Panel ``a`` of chunk ``c`` (rows ``[a0, a1)``) is compared with the rows
    ``[a0, m)`` of its own chunk and with the whole previous chunk.  Its row
    sums are the panel rows' densities over those keys (both directions of the
    pairs inside the panel, self excluded); the column sums of the part
    ``[a1, m)`` are the contributions of the panel rows to the later rows of
    the chunk (``silu(cos_ij) = silu(cos_ji)``), so every within-chunk pair is
    evaluated once.  Memory: one ``_PANEL_ROWS x 2m`` block.
    """
    n_chunks, m, _ = q.shape
    out = torch.zeros(n_chunks, m, dtype=q.dtype, device=q.device)
    t = max(1, min(_PANEL_ROWS, _MAX_BLOCK // (2 * m)))
    buf = torch.empty(t * 2 * m, dtype=q.dtype, device=q.device)
    for c in range(n_chunks):
        qc, oc = q[c], out[c]
        keys_all = torch.cat([qc, q[int(prev[c])]], dim=0) if look_back else qc
        for a0 in range(0, m, t):
            a1 = min(m, a0 + t)
            keys = keys_all[a0:]
            f = buf[: (a1 - a0) * keys.shape[0]].view(a1 - a0, keys.shape[0])
            torch.mm(qc[a0:a1], keys.T, out=f)
            F.silu(f, inplace=True)
            idx = torch.arange(a1 - a0, device=q.device)
            f[idx, idx] = 0  # self-pairs
            oc[a0:a1] += f.sum(dim=1)
            if a1 < m:
                oc[a1:] += f[:, a1 - a0 : m - a0].sum(dim=0)
    return out.reshape(-1)


def lsh_density(
    z: Any,
    n_buckets: int = 100,
    n_rounds: int = 1,
    seed: int | None = None,
    *,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Reformer-style LSH density of each row (DACS); higher = denser.

    For each hash round: rows are L2-normalised; a Gaussian matrix ``R`` of
    shape ``(d, n_buckets / 2)`` is drawn; ``bucket = argmax([zR ; -zR])``;
    rows are stably sorted by ``(bucket, index)``; the sorted order is cut
    into consecutive chunks of ``m = ceil(N / n_buckets)`` rows (the last may
    be short); the neighbours of a row are the other members of its chunk plus
    all members of the previous chunk (chunk 0 looks back to the last chunk);
    and ``density_i = sum_j sigmoid(cos_ij) * cos_ij`` over those neighbours,
    self excluded.  The densities of the rounds are averaged.

    Parameters
    ----------
    z : array-like or torch.Tensor, shape (N, d)
        Feature vectors (e.g. DACS's auxiliary embeddings).  Finite values.
        float64 input is computed in float64, anything else in float32.
    n_buckets : int, default 100
        Number of hash buckets, a positive even int (the paper's ``k``).
    n_rounds : int, default 1
        Number of independent hash rounds to average (the paper uses 1).
    seed : int or None, default None
        Seed of the ``torch.Generator`` (CPU) the rotation matrices are drawn
        from (``torch.randn(d, n_buckets // 2, dtype=float64)``, then cast);
        round ``r`` uses that generator's ``r``-th draw, so results are
        reproducible for a given seed and the same (to rounding) across
        devices and dtypes.  ``None`` draws a fresh seed from torch's global generator.
    device : str or torch.device or None, default None
        Where to compute; ``None`` means CUDA if available, else CPU.

    Returns
    -------
    torch.Tensor, shape (N,)
        Density of each row on ``device``, in ``z``'s float dtype.  Values can
        be negative (cosines lie in ``[-1, 1]``; ``x * sigmoid(x) >= -0.28``).

    Raises
    ------
    InvalidInputError
        If ``z`` is not 2-D, is empty, or holds NaN/Inf.
    InvalidParameterError
        If ``n_buckets`` is not a positive even int, ``n_rounds`` not a
        positive int, ``seed`` not an int or None, or ``device`` is invalid.

    Notes
    -----
    * Chunks: ``m = ceil(N / n_buckets)`` and there are ``ceil(N / m)``
      chunks, which can be fewer than ``n_buckets`` when ``N`` is not a
      multiple of it (e.g. N = 101, 100 buckets: m = 2, 51 chunks); "the last
      chunk" is the last non-empty one.  When ``N <= n_buckets``, ``m = 1``:
      every chunk is one row and a row's only neighbour is the row before it
      in the sorted order.  With a single chunk (only when ``N = 1``) there is
      no look-back; ``N = 1`` gives density 0.
    * The density is a *sum*, so rows of the short last chunk, and of chunk 0
      (which looks back at it), have fewer neighbours and lower densities.
    * All-zero rows stay zero after normalisation: cosine 0 with everything,
      contributing 0.
    * Memory is O(N * d) for the normalised and sorted copies of ``z`` plus
      blocks of at most 2**24 entries: the hashing projects row blocks; chunks
      of up to 256 rows are compared in batches of ``(chunks, m, 2m)``
      similarity blocks, larger chunks in row panels of at most
      ``256 x 2m`` (and at most 2**24) entries.
    * Time O(n_rounds * N * m * d): every row meets ``2m - 1`` neighbours.  Large
      chunks evaluate each pair inside a chunk once (``silu(cos)`` is
      symmetric: the column sums of a panel are its contributions to the later
      rows of the chunk), i.e. ``1.5 m`` terms per row instead of ``2 m``; the
      sums are then accumulated in a different order than a plain row sum, so
      values agree with it to float rounding (tested against the definition
      and the previous row-sum kernel).

    Examples
    --------
    >>> import torch
    >>> z = torch.randn(1000, 16, generator=torch.Generator().manual_seed(0))
    >>> lsh_density(z, n_buckets=10, seed=0, device="cpu").shape
    torch.Size([1000])
    """
    dev = resolve_device(device)
    nb = check_positive_int("n_buckets", n_buckets)
    if nb % 2:
        raise InvalidParameterError(f"n_buckets must be even (R has n_buckets / 2 columns), got {nb}")
    rounds = check_positive_int("n_rounds", n_rounds)
    seed_ = _check_seed(seed)
    x = as_feature_tensor(z, "z", device=dev)
    n = x.shape[0]
    if n == 1:
        return torch.zeros(1, dtype=x.dtype, device=dev)
    zn = _normalise(x)
    if seed_ is None:
        seed_ = int(torch.randint(0, 2**62, (1,)).item())
    gen = torch.Generator(device="cpu").manual_seed(seed_)
    m = math.ceil(n / nb)
    n_chunks = math.ceil(n / m)
    pad = n_chunks * m - n
    density = torch.zeros(n, dtype=x.dtype, device=dev)
    for _ in range(rounds):
        buckets = _lsh_buckets(zn, nb, gen)
        order = torch.sort(buckets, stable=True).indices  # by (bucket, index)
        zs = zn[order]
        if pad:
            zs = torch.cat([zs, zs.new_zeros(pad, zs.shape[1])])
        sums = _chunk_sums(zs, m)[:n]
        density[order] += sums
    return density / rounds


def knn_density(
    z: Any,
    k: int = 20,
    *,
    metric: str = "cosine",
    chunk_size: int = 4096,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Exact kNN density: minus the mean distance to the ``k`` nearest other rows.

    DACS's Eq. 2 defines density as the mean distance to the ``k`` nearest
    neighbours (small = dense).  This returns its *negation*, so that, like
    :func:`lsh_density`, higher = denser and the two can be rank-correlated
    directly.

    Parameters
    ----------
    z : array-like or torch.Tensor, shape (N, d)
        Feature vectors, finite.  float64 input is computed in float64,
        anything else in float32.
    k : int, default 20
        Number of neighbours, a positive int.  Clipped to ``N - 1`` when larger
        (every other row is then a neighbour); ``N = 1`` gives density 0.
    metric : {"cosine", "euclidean"}, default "cosine"
        ``"cosine"``: distance ``1 - cos`` between rows (rows are
        L2-normalised, all-zero rows have cosine 0 with everything);
        ``"euclidean"``: L2 distance.
    chunk_size : int, default 4096
        Rows processed at once; memory is O(chunk_size * N), never N x N.
    device : str or torch.device or None, default None
        Where to compute; ``None`` means CUDA if available, else CPU.

    Returns
    -------
    torch.Tensor, shape (N,)
        ``-mean(distance to the k nearest other rows)`` on ``device``, in
        ``z``'s float dtype.  Ties at the k-th distance do not matter (the
        mean of the k smallest distances is unique).

    Raises
    ------
    InvalidInputError
        If ``z`` is not 2-D, is empty, or holds NaN/Inf.
    InvalidParameterError
        If ``k`` or ``chunk_size`` is not a positive int, ``metric`` is unknown
        or ``device`` is invalid.

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
    >>> knn_density(z, k=1, metric="euclidean", device="cpu").tolist()
    [-1.0, -1.0, -4.0]
    """
    dev = resolve_device(device)
    kk = check_positive_int("k", k)
    metric_ = check_choice("metric", metric, ("cosine", "euclidean"))
    cs = check_positive_int("chunk_size", chunk_size)
    x = as_feature_tensor(z, "z", device=dev)
    n = x.shape[0]
    if n == 1:
        return torch.zeros(1, dtype=x.dtype, device=dev)
    kk = min(kk, n - 1)
    out = torch.empty(n, dtype=x.dtype, device=dev)
    if metric_ == "cosine":
        ref = _normalise(x)
    else:
        ref = x
        sq = (x * x).sum(dim=1)
    for r0 in range(0, n, cs):
        r1 = min(n, r0 + cs)
        rows = torch.arange(r1 - r0, device=dev)
        if metric_ == "cosine":
            dist = 1.0 - ref[r0:r1] @ ref.T
        else:
            d2 = sq[r0:r1, None] + sq[None, :] - 2.0 * (x[r0:r1] @ x.T)
            dist = d2.clamp_min_(0).sqrt_()
        dist[rows, rows + r0] = math.inf  # exclude self
        nearest = torch.topk(dist, kk, dim=1, largest=False, sorted=False).values
        out[r0:r1] = -nearest.mean(dim=1)
    return out
