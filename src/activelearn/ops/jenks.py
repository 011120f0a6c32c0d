"""Exact Jenks natural breaks in O(k n log n), and labelling by breaks.

Jenks natural breaks (Fisher's exact grouping) is optimal one-dimensional
k-means: sort the values and cut them into ``k`` contiguous classes so that the
total within-class sum of squared deviations is smallest.  ``jenkspy`` (the
reference) runs Fisher's O(k n^2) dynamic programme.  Here the same dynamic
programme is solved by divide and conquer: the (smallest) optimal start of the
last class is non-decreasing in the end index (the 1-D k-means cost is Monge),
so each DP layer costs O(n log n).  Every level of the recursion is evaluated
as one vectorised numpy batch, which keeps the Python overhead at
O(k log n) calls.

Bit-for-bit agreement with ``jenkspy``
--------------------------------------
``jenkspy`` computes the cost of a class as ``S2 - S1 * S1 / w`` (sum of
squares, sum, count) and adds the costs class after class, keeping, among
candidates with *equal* floating-point cost, the smallest start of the last
class.  This module uses the same expression, the same order of additions and
the same tie rule.  When all values are integers small enough that every
partial sum is exact in float64 (``n * max|x|^2 < 2**53``), the class costs
are bit-identical to ``jenkspy``'s and so are the breaks, ties included.  For
other inputs the sums come from prefix sums (over values centred on their
mean, for accuracy) instead of ``jenkspy``'s running sums, so two partitions
whose costs agree to within rounding error (about 1e-12 relative) may be
ordered differently; the breaks then differ while both are optimal to that
precision.  Random tests against ``jenkspy`` (ties, negative values,
``n_classes`` 1..8) agree exactly.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..exceptions import InvalidInputError, InvalidParameterError

__all__ = ["jenks_breaks", "jenks_labels"]

_EXACT_LIMIT = float(2**53)


def _as_values(values: Any, name: str = "values") -> np.ndarray:
    """Convert ``values`` to a finite 1-D float64 array (raises library errors)."""
    if isinstance(values, (str, bytes)):
        raise InvalidInputError(f"{name} must be a 1-D sequence of numbers, got {type(values).__name__}")
    if hasattr(values, "detach") and hasattr(values, "cpu"):  # torch tensor
        values = values.detach().cpu().numpy()
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be a 1-D sequence of numbers: {exc}") from exc
    if arr.ndim != 1:
        raise InvalidInputError(f"{name} must be 1-D, got shape {arr.shape}; flatten it first")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InvalidInputError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    out = arr.astype(np.float64)
    if out.size and not np.isfinite(out).all():
        bad = int((~np.isfinite(out)).sum())
        raise InvalidInputError(f"{name} holds {bad} NaN or infinite value(s); remove them first")
    return out


def _check_n_classes(n_classes: Any, n_unique: int) -> int:
    if not isinstance(n_classes, numbers.Integral) or isinstance(n_classes, bool):
        raise InvalidParameterError(f"n_classes must be an int, got {n_classes!r} ({type(n_classes).__name__})")
    k = int(n_classes)
    if k < 1 or k > n_unique:
        raise InvalidParameterError(
            f"n_classes must be between 1 and the number of distinct values ({n_unique}), got {k}"
        )
    return k


def _layer(
    prev: np.ndarray,
    p1: np.ndarray,
    p2: np.ndarray,
    c: int,
    i_hi: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One DP layer by vectorised divide and conquer.

    ``prev[i]`` is the best cost of ``c - 1`` classes over ``x[0..i]``.  Returns
    ``(cur, arg)`` where, for ``i`` in ``[c - 1, i_hi]``, ``cur[i]`` is the best
    cost of ``c`` classes over ``x[0..i]`` and ``arg[i]`` the smallest optimal
    start of the last class.  Other entries are ``inf`` / ``-1``.
    """
    n = prev.shape[0]
    cur = np.full(n, np.inf)
    arg = np.full(n, -1, dtype=np.int64)
    lo = c - 1
    # Intervals of end indices [ilo, ihi] with candidate starts [alo, ahi].
    ilo = np.array([lo], dtype=np.int64)
    ihi = np.array([i_hi], dtype=np.int64)
    alo = np.array([lo], dtype=np.int64)
    ahi = np.array([i_hi], dtype=np.int64)
    while ilo.size:
        mid = (ilo + ihi) >> 1
        top = np.minimum(ahi, mid)
        lengths = top - alo + 1
        offsets = np.empty(lengths.size, dtype=np.int64)
        offsets[0] = 0
        np.cumsum(lengths[:-1], out=offsets[1:])
        total = int(offsets[-1] + lengths[-1])
        seg = np.repeat(np.arange(lengths.size, dtype=np.int64), lengths)
        a = np.arange(total, dtype=np.int64) + (alo - offsets)[seg]
        end = mid[seg] + 1
        w = (end - a).astype(np.float64)
        s1 = p1[end] - p1[a]
        s2 = p2[end] - p2[a]
        # Same expression and order of operations as jenkspy: S2 - (S1*S1)/w, then + previous.
        vals = (s2 - (s1 * s1) / w) + prev[a - 1]
        best = np.minimum.reduceat(vals, offsets)
        hit = np.flatnonzero(vals == best[seg])
        hseg = seg[hit]
        first = np.ones(hit.size, dtype=bool)
        first[1:] = hseg[1:] != hseg[:-1]
        opt = a[hit[first]]
        cur[mid] = best
        arg[mid] = opt
        left = mid > ilo
        right = mid < ihi
        ilo, ihi, alo, ahi = (
            np.concatenate([ilo[left], mid[right] + 1]),
            np.concatenate([mid[left] - 1, ihi[right]]),
            np.concatenate([alo[left], opt[right]]),
            np.concatenate([opt[left], ahi[right]]),
        )
    return cur, arg


class _BudgetExceeded(Exception):
    """Internal: the exact tie resolution would cost too much."""


class _TieResolver:
    """Re-decide near-ties on the optimal path with ``jenkspy``'s own arithmetic.

    ``jenkspy`` sums each class from its last value down to its first
    (running sums), so for non-integer data its class costs differ from
    prefix-sum costs in the last bits, and partitions whose exact costs are
    equal are ordered by that rounding.  Along the traceback, every state whose
    candidates lie within ``tol`` (a bound on both rounding errors) of the best
    is re-evaluated with ``jenkspy``'s arithmetic, recursively through the
    earlier classes (memoised).  Work is capped by ``budget`` array elements.
    """

    def __init__(
        self, x: np.ndarray, p1: np.ndarray, p2: np.ndarray, layers: list[np.ndarray], tol: float, budget: int
    ) -> None:
        self.x, self.p1, self.p2, self.layers, self.tol, self.budget = x, p1, p2, layers, tol, budget
        self.memo: dict[tuple[int, int], float] = {}

    def _spend(self, amount: int) -> None:
        self.budget -= amount
        if self.budget < 0:
            raise _BudgetExceeded

    def _jcost(self, i: int, starts: np.ndarray) -> np.ndarray:
        """``jenkspy``'s cost of ``x[a..i]`` for each ``a`` in ``starts``."""
        amin = int(starts.min())
        self._spend(i + 1 - amin)
        rev = self.x[amin : i + 1][::-1]
        s = np.cumsum(rev)  # sequential accumulation, as jenkspy's loop
        ss = np.cumsum(rev * rev)
        idx = i - starts
        w = (idx + 1).astype(np.float64)
        return ss[idx] - (s[idx] * s[idx]) / w

    def _near(self, i: int, c: int) -> np.ndarray:
        a = np.arange(c - 1, i + 1, dtype=np.int64)
        self._spend(a.size)
        end = i + 1
        s1 = self.p1[end] - self.p1[a]
        s2 = self.p2[end] - self.p2[a]
        vals = (s2 - (s1 * s1) / (end - a).astype(np.float64)) + self.layers[c - 2][a - 1]
        return a[vals <= vals.min() + self.tol]

    def _candidates(self, i: int, c: int) -> tuple[np.ndarray, np.ndarray]:
        near = self._near(i, c)
        prev = np.array([self.value(int(a) - 1, c - 1) for a in near])
        return near, self._jcost(i, near) + prev

    def value(self, i: int, c: int) -> float:
        key = (i, c)
        if key not in self.memo:
            if c == 1:
                self.memo[key] = float(self._jcost(i, np.zeros(1, dtype=np.int64))[0])
            else:
                self.memo[key] = float(self._candidates(i, c)[1].min())
        return self.memo[key]

    def argmin(self, i: int, c: int) -> int:
        near = self._near(i, c)
        if near.size == 1:
            return int(near[0])
        near, vals = self._candidates(i, c)
        return int(near[np.flatnonzero(vals == vals.min())[0]])


# Exact tie resolution is attempted up to this many values (jenkspy itself
# needs minutes beyond it, so nobody compares there).
_RESOLVE_MAX_N = 300_000


def _optimal_starts(x: np.ndarray, k: int) -> list[int]:
    """Start indices (into sorted ``x``) of classes 1..k-1 of the optimal partition."""
    n = x.shape[0]
    is_int = bool(np.all(x == np.round(x)))
    exact = is_int and n * float(np.max(np.abs(x))) ** 2 < _EXACT_LIMIT
    if exact:
        v = x  # all partial sums exact: costs bit-identical to jenkspy
    else:
        v = x - x.mean()  # centring removes most of the cancellation in S2 - S1^2/w
    p1 = np.zeros(n + 1)
    np.cumsum(v, out=p1[1:])
    p2 = np.zeros(n + 1)
    np.cumsum(v * v, out=p2[1:])
    # Layer of one class: cost of x[0..i].
    w = np.arange(1, n + 1, dtype=np.float64)
    prev = p2[1:] - (p1[1:] * p1[1:]) / w
    resolve = not exact and n <= _RESOLVE_MAX_N
    layers: list[np.ndarray] = [prev] if resolve else []
    args: list[np.ndarray] = []
    for c in range(2, k):
        # States beyond n - 1 - (k - c) can never be used by later layers.
        prev, arg = _layer(prev, p1, p2, c, n - 1 - (k - c))
        args.append(arg)
        if resolve:
            layers.append(prev)
    # Last layer: only the end state n - 1 is needed, evaluate all starts directly.
    a = np.arange(k - 1, n, dtype=np.int64)
    s1 = p1[n] - p1[a]
    s2 = p2[n] - p2[a]
    vals = (s2 - (s1 * s1) / (n - a).astype(np.float64)) + prev[a - 1]
    start = int(a[np.flatnonzero(vals == vals.min())[0]])
    starts = [start]
    for arg in reversed(args):
        start = int(arg[start - 1])
        starts.append(start)
    starts = starts[::-1]
    if resolve:
        eps = float(np.finfo(np.float64).eps)
        tol = 8.0 * eps * (n + k) * float(np.dot(x, x)) + 1e-300
        resolver = _TieResolver(x, p1, p2, layers, tol, budget=40 * n * k + 2_000_000)
        try:
            end, resolved = n - 1, []
            for c in range(k, 1, -1):
                s = resolver.argmin(end, c)
                resolved.append(s)
                end = s - 1
            starts = resolved[::-1]
        except _BudgetExceeded:
            pass  # keep the prefix-sum optimum (equal cost up to rounding)
    return starts


def jenks_breaks(values: Sequence[float] | np.ndarray, n_classes: int) -> list[float]:
    """Jenks natural breaks, exact, with the contract of ``jenkspy.jenks_breaks``.

    Sorts the values and splits them into ``n_classes`` contiguous classes that
    minimise the total within-class sum of squared deviations (optimal 1-D
    k-means), in O(n_classes * n log n) time and O(n_classes * n) memory.

    Parameters
    ----------
    values : array-like of float, shape (n,)
        The values, in any order; negative values and ties are fine.  Integer
        input is used as float64.  A torch tensor is accepted too.
    n_classes : int
        Number of classes, ``1 <= n_classes <= number of distinct values`` (the
        bounds ``jenkspy`` enforces).  Python and numpy integers are accepted;
        floats (even ``4.0``, which ``jenkspy`` accepts) and bools are not.

    Returns
    -------
    list of float
        ``n_classes + 1`` break values: the minimum, the largest value of each
        of the first ``n_classes - 1`` classes (the upper bound of that class),
        then the maximum.  The same values as ``jenkspy.jenks_breaks`` returns,
        as Python floats (``jenkspy`` returns numpy scalars of the input dtype).

    Raises
    ------
    InvalidInputError
        If ``values`` is not 1-D numeric, is empty, or holds NaN or Inf.
    InvalidParameterError
        If ``n_classes`` is not an int or lies outside
        ``[1, number of distinct values]``.

    Notes
    -----
    Among partitions of equal cost the one whose last class starts earliest
    (then recursively the same for the earlier classes) is returned, as in
    ``jenkspy``; see the module docstring for when the agreement is bit-exact.
    A break may fall inside a run of equal values (classes are cut by position
    in the sorted order); :func:`jenks_labels` then puts the whole run in the
    lower class.

    Examples
    --------
    >>> jenks_breaks([1.3, 7.1, 7.3, 2.3, 3.9, 4.1, 7.8, 1.2, 4.3, 7.3, 5.0, 4.3], 3)
    [1.2, 2.3, 5.0, 7.8]
    """
    x = _as_values(values)
    if x.size == 0:
        raise InvalidInputError("values is empty; pass at least n_classes distinct values")
    x = np.sort(x, kind="stable")
    n_unique = int(1 + np.count_nonzero(x[1:] != x[:-1]))
    k = _check_n_classes(n_classes, n_unique)
    if k == 1:
        return [float(x[0]), float(x[-1])]
    starts = _optimal_starts(x, k)
    return [float(x[0])] + [float(x[s - 1]) for s in starts] + [float(x[-1])]


def jenks_labels(values: Sequence[float] | np.ndarray, breaks: Sequence[float] | np.ndarray) -> np.ndarray:
    """Class label of each value given breaks from :func:`jenks_breaks`.

    Uses ``jenkspy``'s classification convention (``JenksNaturalBreaks.predict``):
    with inner breaks ``b_1 <= ... <= b_{k-1}`` (``breaks[1:-1]``), a value gets
    the first ``j`` with ``value <= b_{j+1}``, else ``k - 1``.  So a value equal
    to an inner break goes to the *lower* class, values below ``breaks[0]``
    go to class 0 and values above ``breaks[-1]`` to class ``k - 1``.

    Parameters
    ----------
    values : array-like of float, shape (n,)
        Values to label (need not be those the breaks were computed on).
    breaks : array-like of float, shape (k + 1,)
        Break values, minimum and maximum included, non-decreasing, ``k >= 1``.

    Returns
    -------
    numpy.ndarray of int64, shape (n,)
        Labels in ``[0, k - 1]``; 0 is the lowest class.

    Raises
    ------
    InvalidInputError
        If ``values`` or ``breaks`` is not 1-D finite numeric, if ``breaks``
        has fewer than two entries or is not sorted.

    Notes
    -----
    When :func:`jenks_breaks` cut a run of equal values between two classes,
    the whole run is labelled with the lower class, so class sizes from the
    labels can differ from the partition found by the dynamic programme.

    Examples
    --------
    >>> jenks_labels([1.0, 2.0, 2.5, 3.0, 9.0], [1.0, 2.0, 3.0, 9.0]).tolist()
    [0, 0, 1, 1, 2]
    """
    x = _as_values(values)
    b = _as_values(breaks, "breaks")
    if b.size < 2:
        raise InvalidInputError(f"breaks must hold at least 2 values (min and max), got {b.size}")
    if np.any(np.diff(b) < 0):
        raise InvalidInputError("breaks must be sorted in non-decreasing order")
    return np.searchsorted(b[1:-1], x, side="left").astype(np.int64)
