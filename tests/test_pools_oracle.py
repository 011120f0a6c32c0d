"""Books of the pools and answers of the simulated oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn.exceptions import InvalidInputError, InvalidParameterError, OracleError


def _pools(n: int = 10) -> al.Pools:
    return al.Pools(torch.arange(n * 2, dtype=torch.float32).view(n, 2), num_classes=3)


def test_record_moves_samples_and_logs_in_order() -> None:
    pools = _pools()
    oracle = al.SimulatedOracle(np.arange(10) % 3, num_classes=3, cost=np.linspace(1, 2, 10))
    entries = pools.record(oracle.answer(al.Query(np.array([4, 1]))), cycle=2)
    assert pools.labeled.tolist() == [1, 4]
    assert pools.labels.tolist() == [1, 1]
    assert pools.n_unlabeled == 8 and pools.n_interactions == 2
    assert [e.index for e in entries] == [4, 1] and entries[0].cycle == 2
    assert pools.total_cost == pytest.approx(oracle.cost[4] + oracle.cost[1])
    assert pools.labels_of([4]).tolist() == [1]


def test_rejected_answers_leave_the_pool_but_are_not_labeled() -> None:
    pools = _pools()
    in_task = np.ones(10, bool)
    in_task[3] = False
    oracle = al.SimulatedOracle(np.arange(10) % 3, num_classes=3, in_task=in_task)
    pools.record(oracle.answer(al.Query(np.array([3, 5]))))
    assert pools.rejected.tolist() == [3]
    assert pools.labeled.tolist() == [5]
    assert 3 not in pools.unlabeled
    assert pools.log[0].in_task is False and pools.log[0].label is None
    assert pools.total_cost == 2.0


def test_record_validates_everything_before_changing_state() -> None:
    pools = _pools()
    pools.record([al.Answer(0, 1)])
    with pytest.raises(InvalidInputError, match="already examined"):
        pools.record([al.Answer(2, 0), al.Answer(0, 1)])
    assert pools.n_labeled == 1 and len(pools.log) == 1
    with pytest.raises(InvalidInputError, match=r"outside 0\.\.2"):
        pools.record([al.Answer(2, 7)])
    with pytest.raises(InvalidInputError, match="twice"):
        pools.record([al.Answer(2, 0), al.Answer(2, 0)])
    assert pools.n_labeled == 1


def test_cluster_answers_share_one_interaction() -> None:
    pools = _pools()
    pools.record([al.Answer(i, 2, source="cluster", interaction=0) for i in (1, 2, 3)] + [al.Answer(5, 1)])
    assert pools.n_interactions == 2
    assert {e.interaction for e in pools.log[:3]} == {0}
    assert pools.log[0].source == "cluster"


def test_state_dict_round_trip() -> None:
    pools = _pools()
    pools.record([al.Answer(1, 2), al.Answer(7, None, in_task=False, cost=3.0)])
    fresh = _pools()
    fresh.load_state_dict(pools.state_dict())
    assert fresh.log == pools.log
    assert fresh.labeled.tolist() == [1] and fresh.rejected.tolist() == [7]
    assert fresh.total_cost == 4.0


def test_noisy_oracle_flips_at_the_rate_and_is_consistent() -> None:
    y = np.zeros(4000, dtype=np.int64)
    oracle = al.SimulatedOracle(y, num_classes=4, noise_rate=0.25, seed=5)
    labels = np.array([a.label for a in oracle.answer(al.Query(np.arange(4000)))])
    assert abs((labels != 0).mean() - 0.25) < 0.03
    assert set(np.unique(labels[labels != 0])) == {1, 2, 3}
    again = np.array([a.label for a in al.SimulatedOracle(y, num_classes=4, noise_rate=0.25, seed=5).answer(al.Query(np.arange(3999, -1, -1)))])
    np.testing.assert_array_equal(again[::-1], labels)


def test_oracle_errors() -> None:
    with pytest.raises(InvalidParameterError, match="noise_rate"):
        al.SimulatedOracle([0, 1], num_classes=2, noise_rate=1.5)
    with pytest.raises(InvalidInputError, match=r"0\.\.1"):
        al.SimulatedOracle([0, 5], num_classes=2)
    with pytest.raises(OracleError, match="lie in"):
        al.SimulatedOracle([0, 1], num_classes=2).answer(al.Query(np.array([2])))
    with pytest.raises(InvalidInputError, match="NaN"):
        al.SimulatedOracle(np.array([0.0, np.nan]))
