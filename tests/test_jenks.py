"""Tests of activelearn.ops.jenks against jenkspy (the reference)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from activelearn.exceptions import InvalidInputError, InvalidParameterError
from activelearn.ops.jenks import jenks_breaks, jenks_labels

jenkspy = pytest.importorskip("jenkspy")


def _ref(x: np.ndarray, k: int) -> list[float]:
    return [float(v) for v in jenkspy.jenks_breaks(x, n_classes=k)]


def _gen(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "normal":
        return rng.normal(size=n) * rng.uniform(0.1, 100)
    if kind == "ints":  # heavy ties, negative values
        return rng.integers(-5, 6, size=n).astype(np.float64)
    if kind == "ints_wide":
        return rng.integers(-1000, 1000, size=n)
    if kind == "dec1":  # ties on values that are not exact in binary
        return np.round(rng.normal(size=n) * 3, 1)
    if kind == "few_dec":
        return rng.choice(np.arange(-5, 6) * 0.1, size=n)
    if kind == "symmetric":  # many partitions of exactly equal cost
        return np.concatenate([np.arange(n // 2) * 0.1, -np.arange(n - n // 2) * 0.1])
    if kind == "evenly_spaced":
        return np.arange(n) * 0.37 - 3.0
    if kind == "mixture":
        return np.concatenate([rng.normal(size=n // 2), rng.normal(5, 0.1, size=n - n // 2)])
    if kind == "shifted":
        return rng.uniform(size=n) + 1000.0
    raise AssertionError(kind)


KINDS = ["normal", "ints", "ints_wide", "dec1", "few_dec", "symmetric", "evenly_spaced", "mixture", "shifted"]


@pytest.mark.parametrize("kind", KINDS)
def test_matches_jenkspy_random(kind: str) -> None:
    rng = np.random.default_rng(zlib.crc32(kind.encode()))
    for _ in range(60):
        n = int(rng.integers(2, 200))
        x = _gen(kind, n, rng)
        rng.shuffle(x)  # unsorted input
        n_unique = len(np.unique(x))
        k = int(rng.integers(1, min(8, n_unique) + 1))
        assert jenks_breaks(x, k) == _ref(x, k), (kind, n, k, x.tolist())


@pytest.mark.parametrize("k", range(2, 9))
def test_matches_jenkspy_every_k(k: int) -> None:
    rng = np.random.default_rng(k)
    for kind in KINDS:
        x = _gen(kind, 150, rng)
        if len(np.unique(x)) >= k:
            assert jenks_breaks(x, k) == _ref(x, k), (kind, k)


@pytest.mark.parametrize("k", range(1, 9))
def test_n_equals_n_classes(k: int) -> None:
    rng = np.random.default_rng(100 + k)
    x = rng.normal(size=k)
    out = jenks_breaks(x, k)
    assert out == _ref(x, k)
    assert out == [float(np.min(x))] + sorted(x.tolist())[: k - 1] + [float(np.max(x))]


def test_n_unique_equals_n_classes_with_ties() -> None:
    x = [3, 3, 1, 1, 1, 2, 2, -4]
    assert jenks_breaks(x, 4) == _ref(np.asarray(x), 4) == [-4.0, -4.0, 1.0, 2.0, 3.0]


def test_docstring_example_and_types() -> None:
    values = [1.3, 7.1, 7.3, 2.3, 3.9, 4.1, 7.8, 1.2, 4.3, 7.3, 5.0, 4.3]
    out = jenks_breaks(values, 3)
    assert out == [1.2, 2.3, 5.0, 7.8]
    assert all(type(v) is float for v in out)
    assert jenks_breaks(np.asarray(values, dtype=np.float32), np.int64(3)) == _ref(
        np.asarray(values, dtype=np.float32), 3
    )
    assert jenks_breaks(tuple(values), 1) == [1.2, 7.8]


def test_medium_size_matches_jenkspy() -> None:
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.normal(0, 1, 1500), rng.normal(6, 2, 1000), np.round(rng.exponential(3, 500), 1) + 10])
    for k in (2, 4, 7):
        assert jenks_breaks(x, k) == _ref(x, k)


@pytest.mark.slow
def test_large_matches_jenkspy() -> None:
    rng = np.random.default_rng(8)
    for gen in (lambda n: rng.normal(size=n), lambda n: np.round(rng.gamma(2, size=n), 2), lambda n: rng.integers(0, 50, n)):
        x = gen(30_000)
        for k in (3, 6):
            assert jenks_breaks(x, k) == _ref(x, k)


def test_breaks_are_optimal_by_brute_force() -> None:
    rng = np.random.default_rng(3)
    from itertools import combinations

    for _ in range(20):
        x = np.sort(rng.normal(size=10))
        k = 3

        def cost(parts: list[np.ndarray]) -> float:
            return float(sum(((p - p.mean()) ** 2).sum() for p in parts))

        best = min(cost(np.split(x, list(c))) for c in combinations(range(1, 10), k - 1))
        b = jenks_breaks(x, k)
        labels = jenks_labels(x, b)
        assert cost([x[labels == j] for j in range(k)]) == pytest.approx(best, abs=1e-12)


def test_errors() -> None:
    with pytest.raises(InvalidInputError):
        jenks_breaks([1.0, np.nan, 2.0], 2)
    with pytest.raises(InvalidInputError):
        jenks_breaks([1.0, np.inf, 2.0], 2)
    with pytest.raises(InvalidInputError):
        jenks_breaks([], 1)
    with pytest.raises(InvalidInputError):
        jenks_breaks(np.zeros((3, 2)), 2)
    with pytest.raises(InvalidInputError):
        jenks_breaks("abc", 2)
    with pytest.raises(InvalidParameterError):
        jenks_breaks([1.0, 2.0, 3.0], 0)
    with pytest.raises(InvalidParameterError):
        jenks_breaks([1.0, 2.0, 3.0], 4)  # more classes than values
    with pytest.raises(InvalidParameterError):
        jenks_breaks([1.0, 1.0, 1.0, 2.0], 3)  # more classes than distinct values
    with pytest.raises(InvalidParameterError):
        jenks_breaks([1.0, 2.0, 3.0], 2.0)
    with pytest.raises(InvalidParameterError):
        jenks_breaks([1.0, 2.0, 3.0], True)
    with pytest.raises(InvalidParameterError):
        jenks_breaks([1.0, 2.0, 3.0], "2")
    # Library errors are also ValueErrors.
    with pytest.raises(ValueError):
        jenks_breaks([1.0, 2.0], 3)


def test_labels_hand_examples() -> None:
    breaks = [1.0, 2.0, 3.0, 9.0]
    values = [1.0, 1.5, 2.0, 2.0001, 3.0, 3.5, 9.0, 0.0, 10.0]
    # A value equal to an inner break goes to the lower class; out-of-range values clip.
    assert jenks_labels(values, breaks).tolist() == [0, 0, 0, 1, 1, 2, 2, 0, 2]
    assert jenks_labels(values, breaks).dtype == np.int64
    assert jenks_labels([5.0, -1.0], [0.0, 10.0]).tolist() == [0, 0]


def test_labels_match_jenkspy_predict() -> None:
    rng = np.random.default_rng(11)
    x = np.round(rng.normal(size=300), 1)
    for k in (2, 4, 6):
        model = jenkspy.JenksNaturalBreaks(k)
        model.fit(x)
        b = jenks_breaks(x, k)
        assert np.array_equal(jenks_labels(x, b), model.labels_)


def test_labels_errors() -> None:
    with pytest.raises(InvalidInputError):
        jenks_labels([1.0], [1.0])
    with pytest.raises(InvalidInputError):
        jenks_labels([1.0], [2.0, 1.0])
    with pytest.raises(InvalidInputError):
        jenks_labels([np.nan], [0.0, 1.0])
    with pytest.raises(InvalidInputError):
        jenks_labels([[1.0]], [0.0, 1.0])
