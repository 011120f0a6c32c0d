"""Exact lazy k-center greedy (the ``"pruned"`` method of :func:`kcenter_greedy`).

Idea (lazy evaluation, as in lazy greedy for submodular maximisation): a
row's min-distance only shrinks as centers are added, so a value computed
against the first ``s`` centers is an upper bound of the current one.  Only
the rows whose bound is near the top are brought up to date, in blocks, as
matrix-matrix products against the centers added since their last refresh;
a new center is only compared with a row when the triangle inequality
cannot rule it out (``d(a, c) < 2 d(x, a)`` for the row's nearest known
center ``a``).

Exactness.  The plain greedy computes every distance with one matrix-vector
product per center (its *canonical* value).  Matrix-matrix products round
differently, so every refreshed value ``v`` carries a rigorous error bound
``e(v)`` (``|fl(x.c) - x.c| <= gamma_d |x| |c|`` for any summation order,
``gamma_d = d u / (1 - d u)``), and a pick is only accepted when its lower
bound ``v - e(v)`` beats every other row's upper bound; rows whose intervals
overlap the leader are recomputed with the plain kernel (only against the
centers that can be their nearest), and the winner is then decided on those
canonical values, ties to the lowest index.  The picks therefore equal the
plain greedy's bit for bit whenever the plain kernel's per-row result does
not depend on the block (true for MKL on 16-aligned blocks, see
``_ROW_ALIGN``).

Memory: ``O(N)`` (value, stamp and nearest-center arrays; the canonical
labeled minimum when there are labeled rows) plus one block of
``_BLOCK_ELEMS`` entries and one gathered block of rows.
"""

from __future__ import annotations

import math

import torch

#: matrix-vector products are done on blocks of a multiple of this many rows (as in kcenter.py)
_ROW_ALIGN = 16
#: rows gathered in one candidate pool (rows whose upper bound is above the pool threshold)
_POOL = 65536
#: a refresh of more than this fraction of the pool is done as contiguous passes
_DENSE = 0.3
#: largest center-to-center distance table kept (entries)
_CC_ELEMS = 1 << 24
#: smallest pool target (the target is N / 16 between this and _POOL)
_POOL_MIN = 2048
#: refreshes of fewer (row, center) pairs skip the triangle-inequality filter (cheaper to compute)
_FILTER_MIN = 4096
#: first refresh block of a pick (grows x4 while the pick is not certified)
_FIRST = 64


def _rounding_bounds(geo) -> tuple[float, float, float]:
    """``(E, slack, u)``: distance error bounds of the module docstring for ``geo``'s dtype, metric and norms.

    Euclidean: two computations of a squared distance differ (and each differs
    from the exact value) by at most ``E = (4 gamma_d + 16 u) max|x|^2``; a
    distance ``v`` then by ``min(sqrt(E), E / v)`` and by at most ``slack =
    sqrt(E)``.  Cosine: ``E = 2 gamma_d + 16 u`` on ``1 - cos``, ``slack =
    sqrt(2 E)`` on the chord ``sqrt(2 (1 - cos))``.  ``u`` is the unit roundoff.
    """
    u = float(torch.finfo(geo.X.dtype).eps) / 2.0
    gamma = geo.d * u / max(1e-300, 1.0 - geo.d * u)
    if geo.metric == "euclidean":
        m2 = float(geo.aux.max()) if geo.n else 0.0
        E = (4.0 * gamma + 16.0 * u) * m2 + 1e-30
        return E, math.sqrt(E), u
    E = 2.0 * gamma + 16.0 * u
    return E, math.sqrt(2.0 * E), u


class _LazyState:
    """Bounds, stamps and nearest known centers of every row, plus the center matrix.

    Parameters
    ----------
    geo : _Geometry
        Features and kernels (see :mod:`activelearn.ops.kcenter`).
    mind : torch.Tensor
        Canonical min-distances to the initial centers (``-inf`` for centers).
    assign : torch.Tensor
        Index (into ``center_rows``) of each row's nearest initial center.
    center_rows : list of int
        Rows of the initial centers.
    capacity : int
        Total number of centers there will be.
    labeled : bool
        Whether the initial centers are labeled rows (their canonical
        distances came from the block kernel and are kept as ``lab_min``).
    """

    def __init__(self, geo, mind: torch.Tensor, assign: torch.Tensor, center_rows: list[int], capacity: int, labeled: bool) -> None:
        dev = geo.device
        self.geo, self.n, self.d = geo, geo.n, geo.d
        self.val = mind
        self.lab_min = mind.clone() if labeled else None
        self.L = len(center_rows) if labeled else 0
        self.k = len(center_rows)
        self.stamp = torch.full((self.n,), self.k, dtype=torch.int32, device=dev)
        self.asg = assign.to(torch.int32) if assign.numel() else torch.zeros(self.n, dtype=torch.int32, device=dev)
        rows = torch.as_tensor(center_rows, dtype=torch.int64, device=dev)
        # zero rows beyond the centers pad the matrix-vector products of canonical() to 16 rows
        self.C = torch.zeros(capacity + _ROW_ALIGN, self.d, dtype=geo.X.dtype, device=dev)
        self.caux = torch.zeros(capacity + _ROW_ALIGN, dtype=geo.cdtype, device=dev)
        self.C[: self.k] = geo.X.index_select(0, rows)
        self.caux[: self.k] = geo.aux.index_select(0, rows)
        # center-to-center distances (metric units), kept when they fit in one block
        self.cc = None
        if capacity * capacity <= _CC_ELEMS:
            self.cc = torch.zeros(capacity, capacity, dtype=geo.cdtype, device=dev)
            if self.k:
                self.cc[: self.k, : self.k] = geo.to_metric(geo.dist_block(self.C[: self.k], self.caux[: self.k], self.C[: self.k], self.caux[: self.k]))
        self.E, self.slack, self.u = _rounding_bounds(geo)
        self.ub = self.upper(self.val)  # upper bounds of the canonical min-distances, kept in step with val
        self.pool = torch.zeros(0, dtype=torch.int64, device=dev)
        self.tau = math.inf  # every row outside the pool has an upper bound < tau
        self.refreshed = 0
        self.rechecked = 0
        self.pairs = 0

    # ---- bounds ----------------------------------------------------------------
    def err(self, v: torch.Tensor) -> torch.Tensor:
        """Bound on |computed - canonical| (and on |computed - exact|) for a computed distance ``v >= 0``."""
        if self.geo.metric == "cosine":
            return torch.full_like(v, self.E)
        # |sqrt(a) - sqrt(b)| <= min(sqrt|a - b|, |a - b| / sqrt(b)), plus the rounding of the sqrt
        return v.clamp_min(1e-30).reciprocal_().mul_(self.E).clamp_max_(self.slack).add_(v, alpha=4.0 * self.u)

    def upper(self, v: torch.Tensor) -> torch.Tensor:
        """``v + err(v)``, keeping ``-inf`` (centers) at ``-inf``."""
        live = v > -math.inf
        if bool(live.all()):
            return v + self.err(v)
        return torch.where(live, v + self.err(v.clamp_min(0.0)), v)

    # ---- pool of candidate rows ----------------------------------------------
    def rebuild(self) -> None:
        """Lower the threshold so that about ``_POOL`` more rows enter the pool.

        The new threshold is a quantile of a strided sample of the upper
        bounds below the current one, so it always admits new rows; the pool
        is then every live row whose upper bound reaches it.
        """
        ub = self.ub
        step = max(1, self.n // 16384)
        sample = ub[::step]
        sample = sample[(sample < self.tau) & (sample > -math.inf)]
        target = min(_POOL, max(_POOL_MIN, self.n // 16))
        want = max(1, (target * sample.numel()) // max(1, self.n))
        if sample.numel() <= want:  # (nearly) everything left: take every live row
            tau = -math.inf
            self.pool = torch.nonzero(ub > -math.inf).squeeze(1)
        else:
            tau = float(torch.topk(sample, want).values[-1])
            self.pool = torch.nonzero(ub >= tau).squeeze(1)
        self.tau = tau

    # ---- refreshing ------------------------------------------------------------
    def refresh(self, rows: torch.Tensor) -> None:
        """Bring ``val`` of ``rows`` up to date with all ``k`` centers (matrix-matrix blocks).

        Rows that only missed the newest center are refreshed apart from the
        others, so that a few long-stale rows do not make every row of the
        block meet all the centers they missed.
        """
        if rows.numel() > 1:
            recent = self.stamp.index_select(0, rows) == self.k - 1
            n_recent = int(recent.sum())
            if 0 < n_recent < rows.numel():
                self._refresh(rows[recent])
                self._refresh(rows[~recent])
                return
        self._refresh(rows)

    def _refresh(self, rows: torch.Tensor) -> None:
        geo, k = self.geo, self.k
        self.refreshed += int(rows.numel())
        j0 = int(self.stamp.index_select(0, rows).min())
        newc = torch.arange(j0, k, device=rows.device)
        if rows.numel() * newc.numel() > _FILTER_MIN:
            a = self.asg.index_select(0, rows).long()
            ua, inv = torch.unique(a, return_inverse=True)
        if rows.numel() * newc.numel() > _FILTER_MIN and newc.numel() * ua.numel() <= (1 << 22):
            # triangle inequality: center c can only beat row x's nearest known center a if d(a, c) < 2 d(x, a)
            r = geo.to_metric(self.ub.index_select(0, rows))
            rmax = torch.full((ua.numel(),), -math.inf, dtype=r.dtype, device=r.device)
            rmax.scatter_reduce_(0, inv, r, reduce="amax", include_self=True)
            if self.cc is not None:
                dca = self.cc[j0:k].index_select(1, ua)
            else:
                dca = geo.to_metric(geo.dist_block(self.C[j0:k], self.caux[j0:k], self.C[ua], self.caux[ua]))
            ok = dca < (2.0 * (1.0 + 8.0 * self.u) * rmax[None, :] + 3.0 * self.slack)
            newc = newc[ok.any(dim=1)]
        self.stamp[rows] = k
        self.pairs += int(rows.numel()) * int(newc.numel())
        if newc.numel() == 0:
            return
        caux = self.caux.index_select(0, newc)
        C = geo.prep_centers(self.C.index_select(0, newc), caux)
        step = max(16, min(geo.chunk, (1 << 24) // max(1, newc.numel())))
        for s in range(0, rows.numel(), step):
            r = rows[s : s + step]
            vmin, arg = geo.min_block(geo.X.index_select(0, r), geo.aux.index_select(0, r), C, caux)
            old = self.val.index_select(0, r)
            better = vmin < old
            new = torch.where(better, vmin, old)
            self.val[r] = new
            self.ub[r] = new + self.err(new)
            self.asg[r] = torch.where(better, newc.index_select(0, arg).to(torch.int32), self.asg.index_select(0, r))

    def canonical(self, rows: torch.Tensor) -> torch.Tensor:
        """Min-distances of ``rows`` exactly as the plain greedy computes them.

        The plain greedy's value for row ``x`` and center ``c`` is entry ``x``
        of the matrix-vector product ``X_block @ c``.  MKL's per-row result of
        a matrix-vector product is the same when the roles are swapped
        (``C_block @ x``, centers as the matrix rows, padded to a multiple of
        16 rows; checked by the tests against ``plain``), so one product per
        row gives its canonical distances to every picked center at once.
        """
        geo, L, k = self.geo, self.L, self.k
        self.rechecked += int(rows.numel())
        out = (
            self.lab_min.index_select(0, rows).clone()
            if self.lab_min is not None
            else torch.full((rows.numel(),), math.inf, dtype=geo.cdtype, device=rows.device)
        )
        if k == L:
            return out
        k16 = L + -(-(k - L) // _ROW_ALIGN) * _ROW_ALIGN
        block = self.C[L:k16]
        dots = torch.empty(rows.numel(), k16 - L, dtype=block.dtype, device=block.device)
        for i, r in enumerate(rows.tolist()):
            torch.mv(block, geo.X[r], out=dots[i])
        # the same elementwise operations as the plain kernel, broadcast over rows x centers
        d = geo._finish(dots[:, : k - L], geo.aux.index_select(0, rows)[:, None], self.caux[None, L:k])
        torch.minimum(out, d.min(dim=1).values, out=out)
        return out

    # ---- one pick ----------------------------------------------------------------
    def next_pick(self) -> int:
        """Row with the largest canonical min-distance (lowest index among ties)."""
        b = _FIRST
        while True:
            ubP = self.ub.index_select(0, self.pool)
            # rows that fell below the threshold (or became centers) leave the pool
            keep = ubP >= self.tau if self.tau > -math.inf else ubP > -math.inf
            self.pool, ubP = self.pool[keep], ubP[keep]
            if self.pool.numel() == 0:
                self.rebuild()
                b = _FIRST
                continue
            nb = min(b, self.pool.numel())
            if nb < self.pool.numel():
                tv, ti = torch.topk(ubP, nb + 1)
                rest = float(tv[nb])
                top = self.pool.index_select(0, ti[:nb])
            else:
                rest, top = -math.inf, self.pool
            stale = top[self.stamp.index_select(0, top) < self.k]
            if stale.numel() > _DENSE * self.n:
                self.refresh_all()
            elif stale.numel():
                self.refresh(stale)
            vt = self.val.index_select(0, top)
            lo = vt - self.err(vt)
            best_lo = float(lo.max())
            if best_lo > rest and best_lo >= self.tau and best_lo > -math.inf:
                ut = self.upper(vt)
                amb = top[ut >= best_lo]
                if amb.numel() == 1:
                    return int(amb[0])
                # the leader's exact value usually rules out every rival at once
                li = int(torch.argmax(vt))
                leader = top[li : li + 1]
                x = self.canonical(leader)
                lead = int(leader[0])
                rival = (ut > x) | ((ut == x) & (top < lead))
                rival[li] = False
                if not bool(rival.any()):
                    return lead
                amb = torch.cat([leader, top[rival]])
                exact = self.canonical(amb)
                top_val = exact.max()
                return int(amb[exact == top_val].min())
            if nb < self.pool.numel():
                b *= 4
            elif self.tau == -math.inf:
                raise RuntimeError("k-center: no live row left")  # guarded by the budget check
            else:
                self.rebuild()
                b = _FIRST

    def refresh_all(self) -> None:
        """Contiguous refresh of every live row (cheaper than a gather when most rows are stale)."""
        geo = self.geo
        for s in range(0, self.n, geo.chunk):
            e = min(s + geo.chunk, self.n)
            st = torch.nonzero((self.stamp[s:e] < self.k) & (self.val[s:e] > -math.inf)).squeeze(1) + s
            if st.numel():
                self.refresh(st)

    def add_center(self, p: int) -> None:
        """Make row ``p`` a center."""
        self.val[p] = -math.inf
        self.ub[p] = -math.inf
        self.C[self.k] = self.geo.X[p]
        self.caux[self.k] = self.geo.aux[p]
        if self.cc is not None and self.k:
            k, geo = self.k, self.geo
            row = geo.to_metric(geo.dist_block(self.C[:k], self.caux[:k], self.C[k : k + 1], self.caux[k : k + 1]))[:, 0]
            self.cc[k, :k] = row
            self.cc[:k, k] = row
        self.k += 1


def lazy_loop(geo, mind: torch.Tensor, assign: torch.Tensor, center_rows: list[int], picks: list[int], budget: int, labeled: bool) -> _LazyState:
    """Lazy exact greedy: appends to ``picks`` in place and returns the final state."""
    state = _LazyState(geo, mind, assign, center_rows, len(center_rows) + budget, labeled)
    while len(picks) < budget:
        p = state.next_pick()
        picks.append(p)
        state.add_center(p)
    return state
