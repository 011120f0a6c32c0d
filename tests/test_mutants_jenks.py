"""Behaviour checks of activelearn.ops.jenks written against surviving mutants (issue 13).

References: a brute force over every break position (optimality, float64), Fisher's plain
O(k n^2) dynamic programme with the documented tie rule (smallest start of the last class among
equal costs, then recursively), and hand-computed values.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
import torch

from activelearn.exceptions import InvalidInputError, InvalidParameterError
from activelearn.ops import jenks as jenks_mod
from activelearn.ops.jenks import jenks_breaks, jenks_labels


def _class_cost(x: np.ndarray, a: int, i: int) -> float:
    """jenkspy's cost of the class ``x[a..i]``: ``S2 - S1 * S1 / w``, sums run from ``x[i]`` down to ``x[a]``."""
    s1 = s2 = 0.0
    for v in x[a : i + 1][::-1]:
        s1 += float(v)
        s2 += float(v) * float(v)
    return s2 - (s1 * s1) / float(i + 1 - a)


def brute_breaks(values: np.ndarray | list[float], k: int) -> list[float]:
    """Breaks by exhaustive search over every break position, in float64.

    Total cost: class costs added class after class (``cost_c + total_{c-1}``); among equal costs
    the smallest start of the last class, then of the class before, ... (the documented rule)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = x.size
    best_key: tuple[float, tuple[int, ...]] | None = None
    for cuts in combinations(range(1, n), k - 1):
        bounds = (0, *cuts, n)
        total = _class_cost(x, 0, bounds[1] - 1)
        for c in range(1, k):
            total = _class_cost(x, bounds[c], bounds[c + 1] - 1) + total
        key = (total, tuple(reversed(cuts)))
        if best_key is None or key < best_key:
            best_key = key
    assert best_key is not None
    starts = list(reversed(best_key[1]))
    return [float(x[0])] + [float(x[s - 1]) for s in starts] + [float(x[-1])]


def fisher_breaks(values: np.ndarray, k: int) -> list[float]:
    """Fisher's O(k n^2) dynamic programme in float64 with jenkspy's arithmetic.

    Class cost ``S2 - S1 * S1 / w`` from running sums accumulated from the class's last value down
    to its first; ``cost(last class) + best(prefix)``; the smallest start wins ties."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = x.size

    def cost(a: int, i: int) -> float:
        return _class_cost(x, a, i)

    best = [[np.inf] * n for _ in range(k + 1)]
    arg = [[-1] * n for _ in range(k + 1)]
    for i in range(n):
        best[1][i] = cost(0, i)
    for c in range(2, k + 1):
        for i in range(c - 1, n):
            for a in range(c - 1, i + 1):
                v = cost(a, i) + best[c - 1][a - 1]
                if v < best[c][i]:
                    best[c][i], arg[c][i] = v, a
    starts, end = [], n - 1
    for c in range(k, 1, -1):
        s = arg[c][end]
        starts.append(s)
        end = s - 1
    return [float(x[0])] + [float(x[s - 1]) for s in reversed(starts)] + [float(x[-1])]


# --------------------------------------------------------------------------- #
# breaks: optimality and the tie rule
# --------------------------------------------------------------------------- #
def test_hand_ties_pick_the_earliest_start_of_the_last_class() -> None:
    # [0, 1, 2] in 2 classes: {0}{1, 2} and {0, 1}{2} both cost 1/2; the last class starting earliest wins.
    assert jenks_breaks([2, 0, 1], 2) == [0.0, 0.0, 2.0]
    assert jenks_breaks([2.0, 0.0, 1.0], 2) == [0.0, 0.0, 2.0]
    # [0, 1, 2, 3, 4] in 3 classes: {0,1}{2,3}{4}, {0}{1,2}{3,4} and {0,1}{2}{3,4} all cost 1.
    # Earliest last class: {3, 4} (start 3); then the earliest second class: {1, 2} (start 1).
    assert jenks_breaks([4, 3, 2, 1, 0], 3) == [0.0, 0.0, 2.0, 4.0]
    assert jenks_breaks([0.0, 1.0, 2.0, 3.0, 4.0], 3) == [0.0, 0.0, 2.0, 4.0]
    assert brute_breaks([0, 1, 2, 3, 4], 3) == [0.0, 0.0, 2.0, 4.0]


@pytest.mark.parametrize("seed", range(6))
def test_integer_breaks_equal_exact_brute_force_with_ties(seed: int) -> None:
    """Small integers with many ties (every partial sum exact): every break position tried."""
    rng = np.random.default_rng(seed)
    for _ in range(12):
        n = int(rng.integers(2, 11))
        x = rng.integers(-4, 5, size=n).tolist()
        n_unique = len(set(x))
        for k in range(1, min(4, n_unique) + 1):
            assert jenks_breaks(x, k) == brute_breaks(x, k) == fisher_breaks(np.asarray(x), k), (x, k)


@pytest.mark.parametrize("kind", ["normal", "dec1", "shifted", "symmetric"])
def test_float_breaks_equal_fisher_dp_and_are_optimal(kind: str) -> None:
    """Non-integer data (prefix sums over centred values + the tie resolver) against Fisher's DP."""
    rng = np.random.default_rng(len(kind))
    for _ in range(8):
        n = int(rng.integers(3, 13))
        if kind == "normal":
            x = rng.normal(size=n) * 10
        elif kind == "dec1":
            x = np.round(rng.normal(size=n) * 2, 1)
        elif kind == "shifted":
            x = rng.uniform(size=n) + 1e4
        else:
            x = np.concatenate([np.arange(n // 2) * 0.1, -np.arange(n - n // 2) * 0.1])
            rng.shuffle(x)
        n_unique = len(np.unique(x))
        for k in range(2, min(4, n_unique) + 1):
            got = jenks_breaks(x, k)
            assert got == fisher_breaks(x, k) == brute_breaks(x, k), (kind, x.tolist(), k)
            # optimal by brute force (to rounding)
            xs = np.sort(x)
            labels = jenks_labels(xs, got)
            cost = sum(((xs[labels == j] - xs[labels == j].mean()) ** 2).sum() for j in range(k))
            best = min(
                sum(((p - p.mean()) ** 2).sum() for p in np.split(xs, list(c))) for c in combinations(range(1, n), k - 1)
            )
            if len(np.unique(xs)) == n:  # labels follow the partition when there are no ties
                assert cost == pytest.approx(best, rel=1e-9, abs=1e-9)


def test_one_class_is_min_and_max() -> None:
    assert jenks_breaks([3.0, -1.0, 2.0], 1) == [-1.0, 3.0]
    out = jenks_breaks(np.array([5, 5, 5]), 1)
    assert out == [5.0, 5.0] and all(type(v) is float for v in out)


def test_torch_tensor_input_with_grad() -> None:
    t = torch.tensor([1.3, 7.1, 7.3, 2.3, 3.9, 4.1, 7.8, 1.2, 4.3, 7.3, 5.0, 4.3], dtype=torch.float64, requires_grad=True)
    assert jenks_breaks(t, 3) == [1.2, 2.3, 5.0, 7.8]
    assert jenks_labels(t, torch.tensor([1.2, 2.3, 5.0, 7.8], dtype=torch.float64)).tolist() == [0, 2, 2, 0, 1, 1, 2, 0, 1, 2, 1, 1]


# --------------------------------------------------------------------------- #
# labels
# --------------------------------------------------------------------------- #
def test_labels_hand_values_ties_and_out_of_range() -> None:
    breaks = [0.0, 1.0, 1.0, 4.0]  # an empty middle class: equal inner breaks
    got = jenks_labels([-5.0, 0.0, 0.5, 1.0, 1.0000001, 4.0, 9.0], breaks)
    assert got.tolist() == [0, 0, 0, 0, 2, 2, 2]
    assert got.dtype == np.int64
    assert jenks_labels([3.0], [0.0, 3.0]).tolist() == [0]
    assert jenks_labels(np.array([], dtype=np.float64), [0.0, 1.0, 2.0]).tolist() == []
    assert jenks_labels([1, 2, 3], np.array([1, 2, 3])).tolist() == [0, 0, 1]


def test_labels_follow_the_breaks_partition() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=40)
    for k in (2, 3, 5):
        b = jenks_breaks(x, k)
        labels = jenks_labels(x, b)
        for j in range(k):
            cls = x[labels == j]
            assert cls.min() >= b[j] and cls.max() <= b[j + 1]
            if j:
                assert cls.min() > b[j]


# --------------------------------------------------------------------------- #
# errors: library exceptions, messages that say what was received
# --------------------------------------------------------------------------- #
def test_value_errors_messages() -> None:
    with pytest.raises(InvalidInputError, match=r"^values must be a 1-D sequence of numbers, got str$"):
        jenks_breaks("abc", 2)
    with pytest.raises(InvalidInputError, match=r"^values must be a 1-D sequence of numbers, got bytes$"):
        jenks_breaks(b"abc", 2)
    with pytest.raises(InvalidInputError, match=r"^values must be 1-D, got shape \(3, 2\); flatten it first$"):
        jenks_breaks(np.zeros((3, 2)), 2)
    with pytest.raises(InvalidInputError, match=r"^values must be 1-D, got shape \(\); flatten it first$"):
        jenks_breaks(3.0, 1)
    with pytest.raises(InvalidInputError, match=r"^values must hold real numbers, got dtype bool$"):
        jenks_breaks([True, False, True], 2)
    with pytest.raises(InvalidInputError, match=r"^values must hold real numbers, got dtype complex128$"):
        jenks_breaks(np.array([1 + 1j, 2.0]), 2)
    with pytest.raises(InvalidInputError, match=r"^values must hold real numbers, got dtype object$"):
        jenks_breaks(np.array([1.0, None]), 2)
    with pytest.raises(InvalidInputError, match=r"^values must be a 1-D sequence of numbers: "):
        jenks_breaks([[1.0, 2.0], [3.0]], 2)  # ragged
    with pytest.raises(InvalidInputError, match=r"^values holds 2 NaN or infinite value\(s\); remove them first$"):
        jenks_breaks([1.0, np.nan, 2.0, -np.inf], 2)
    with pytest.raises(InvalidInputError, match=r"^values holds 1 NaN or infinite value\(s\); remove them first$"):
        jenks_breaks([1.0, 2.0, np.inf], 2)
    with pytest.raises(InvalidInputError, match=r"^values is empty; pass at least n_classes distinct values$"):
        jenks_breaks(np.array([]), 1)
    with pytest.raises(InvalidInputError, match=r"^breaks holds 1 NaN"):
        jenks_labels([1.0], [0.0, np.nan])
    with pytest.raises(InvalidInputError, match=r"^breaks must be 1-D"):
        jenks_labels([1.0], [[0.0, 1.0]])
    with pytest.raises(InvalidInputError, match=r"^breaks must hold at least 2 values \(min and max\), got 1$"):
        jenks_labels([1.0], [1.0])
    with pytest.raises(InvalidInputError, match=r"^breaks must be sorted in non-decreasing order$"):
        jenks_labels([1.0], [0.0, 2.0, 1.0])


def test_n_classes_errors_messages() -> None:
    x = [1.0, 2.0, 2.0, 3.0]
    with pytest.raises(InvalidParameterError, match=r"^n_classes must be an int, got 2\.0 \(float\)$"):
        jenks_breaks(x, 2.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match=r"^n_classes must be an int, got True \(bool\)$"):
        jenks_breaks(x, True)
    msg = r"^n_classes must be between 1 and the number of distinct values \(3\), got {}$"
    for bad in (0, -1, 4):
        with pytest.raises(InvalidParameterError, match=msg.format(bad)):
            jenks_breaks(x, bad)
    assert jenks_breaks(x, 3) == [1.0, 1.0, 2.0, 3.0]
    assert jenks_breaks(x, np.int32(3)) == [1.0, 1.0, 2.0, 3.0]


# --------------------------------------------------------------------------- #
# the near-tie resolution (non-integer data)
# --------------------------------------------------------------------------- #
def test_values_far_from_zero_match_jenkspy() -> None:
    """1e6 + U(0, 1): the rounding tolerance of the tie resolver is large; every candidate start is valid."""
    jenkspy = pytest.importorskip("jenkspy")
    rng = np.random.default_rng(0)
    for shift in (1e5, 1e6, 1e7):
        x = rng.uniform(size=200) + shift
        for k in (2, 3, 4):
            assert jenks_breaks(x, k) == [float(v) for v in jenkspy.jenks_breaks(x, n_classes=k)], (shift, k)


def test_exhausted_tie_budget_falls_back_to_the_prefix_sum_optimum(monkeypatch: pytest.MonkeyPatch) -> None:
    """Symmetric values with exact ties: the resolver re-decides them with jenkspy's arithmetic; when its
    work budget is exhausted the prefix-sum optimum (equal cost up to rounding) is kept instead."""
    x = np.concatenate([np.arange(6) * 0.1, -np.arange(6) * 0.1])
    resolved = jenks_breaks(x, 2)
    assert resolved == brute_breaks(x, 2) == fisher_breaks(x, 2) == [-0.5, 0.0, 0.5]

    original = jenks_mod._TieResolver

    def no_budget(*args: object, budget: int, **kwargs: object) -> object:
        return original(*args, budget=0, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jenks_mod, "_TieResolver", no_budget)
    fallback = jenks_breaks(x, 2)
    assert fallback == [-0.5, -0.1, 0.5]  # the other partition of (nearly) equal cost
    xs = np.sort(x)

    def cost(breaks: list[float]) -> float:
        labels = jenks_labels(xs, breaks)
        return float(sum(((xs[labels == j] - xs[labels == j].mean()) ** 2).sum() for j in range(2)))

    assert cost(fallback) == pytest.approx(cost(resolved), rel=1e-12)


def test_values_whose_squares_underflow() -> None:
    """|x| ~ 1e-170: every square underflows to 0, so every class cost is 0 and all partitions tie; the
    tie rule then gives the earliest starts, as jenkspy does."""
    x = np.array([0.0, 1e-170, 2e-170, 3e-170, 5e-170])
    assert jenks_breaks(x, 2) == [0.0, 0.0, 5e-170]
    assert jenks_breaks(x, 3) == [0.0, 0.0, 1e-170, 5e-170]
    jenkspy = pytest.importorskip("jenkspy")
    for k in (2, 3, 4):
        assert jenks_breaks(x, k) == [float(v) for v in jenkspy.jenks_breaks(x, n_classes=k)]
