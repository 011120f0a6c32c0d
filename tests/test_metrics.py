"""AUBC and its confidence interval against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from activelearn.exceptions import InvalidInputError
from activelearn.history import CycleRecord, History
from activelearn.metrics import aubc, aubc_table, mean_ci


def test_aubc_by_hand() -> None:
    # trapezoids: (0.5+0.7)/2*10 + (0.7+0.8)/2*30 = 6 + 22.5 = 28.5 over a width of 40
    assert aubc([10, 20, 50], [0.5, 0.7, 0.8]) == pytest.approx(28.5 / 40)
    assert aubc([10, 20], [0.9, 0.9]) == pytest.approx(0.9)
    assert aubc([5], [0.4]) == 0.4
    # early gains count: same last value, higher area
    assert aubc([0, 1, 2], [0.5, 0.9, 0.9]) > aubc([0, 1, 2], [0.5, 0.5, 0.9])


@pytest.mark.parametrize(("x", "y"), [([1, 1], [0.1, 0.2]), ([2, 1], [0.1, 0.2]), ([1, 2], [0.1, float("nan")]), ([1, 2], [0.1]), ([], [])])
def test_aubc_refuses_bad_curves(x: list[float], y: list[float]) -> None:
    with pytest.raises(InvalidInputError):
        aubc(x, y)


def test_mean_ci_by_hand() -> None:
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.303 * 1.0 / math.sqrt(3))
    assert mean_ci([5.0]) == (5.0, 0.0)


def _history(seed: int, accs: list[float]) -> History:
    h = History(meta={"seed": seed})
    for c, a in enumerate(accs):
        h.records.append(CycleRecord(cycle=c, n_labeled=10 * (c + 1), interactions=10 * (c + 1), cost=float(10 * (c + 1)), metrics={"accuracy": a}))
    return h


def test_aubc_table_by_hand() -> None:
    runs = {"a": [_history(0, [0.5, 0.7, 0.9]), _history(1, [0.5, 0.9, 0.9])]}
    table = aubc_table(runs)
    # seed 0: (0.6 + 0.8) / 2 = 0.70 -> 70.00; seed 1: (0.7 + 0.9) / 2 = 0.80 -> 80.00; mean 75, CI 12.706 * 7.071 / sqrt(2) = 63.53
    assert "| a | 75.00 | 63.53 | 70.00, 80.00 |" in table
    assert np.isclose(12.706 * np.std([70.0, 80.0], ddof=1) / math.sqrt(2), 63.53, atol=0.01)


def test_aubc_table_one_run_has_no_interval() -> None:
    assert "| a | 70.00 | n/a (1 run) | 70.00 |" in aubc_table({"a": [_history(0, [0.5, 0.7, 0.9])]})
