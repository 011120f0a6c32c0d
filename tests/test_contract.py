"""The contract every registered strategy must satisfy (parametrised over the registry)."""

from __future__ import annotations


import numpy as np
import pytest

import activelearn as al
from activelearn.loop import validate_selection

from conftest import make_setup

def _flat(picks: object) -> np.ndarray:
    """Every pool index a selection touches (a plain array, or a Query's samples and clusters)."""
    if isinstance(picks, al.Query):
        return np.concatenate([np.asarray(picks.indices, np.int64), *[np.asarray(g, np.int64) for g in picks.groups]])
    return np.asarray(picks)


def _interactions(picks: object) -> int:
    return len(picks.indices) + len(picks.groups) if isinstance(picks, al.Query) else len(picks)


def _same(a: object, b: object) -> None:
    assert type(a) is type(b)
    if isinstance(a, al.Query):
        np.testing.assert_array_equal(a.indices, b.indices)
        assert len(a.groups) == len(b.groups)
        for ga, gb in zip(a.groups, b.groups):
            np.testing.assert_array_equal(ga, gb)
    else:
        np.testing.assert_array_equal(a, b)


#: every registered name plus combinations built by name ("candidates+scorer")
NAMES = al.strategies.available() + [
    "coreset+entropy", "random+margin", "dacs+entropy", "coreset+learning_loss", "coreset+ncenet",
    "dacs+learning_loss", "dacs+ncenet",
]


@pytest.mark.parametrize("name", NAMES)
def test_picks_are_unique_unlabeled_and_exactly_budget(name: str) -> None:
    s = make_setup(name)
    picks = s.strategy.select(s.model, s.pools, 17)
    validate_selection(picks, s.pools, 17)
    assert _interactions(picks) == 17
    touched = _flat(picks)
    assert np.unique(touched).size == touched.size
    assert s.pools.unlabeled_mask[touched].all()
    assert touched.dtype == np.int64


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_picks(name: str) -> None:
    a = make_setup(name, seed=3)
    b = make_setup(name, seed=3)
    _same(a.strategy.select(a.model, a.pools, 12), b.strategy.select(b.model, b.pools, 12))


@pytest.mark.parametrize("name", NAMES)
def test_budget_larger_than_pool_returns_pool_with_warning(name: str) -> None:
    s = make_setup(name, n=60, n_labeled=50)
    with pytest.warns(UserWarning, match="exceeds the 10 unlabeled"):
        picks = s.strategy.select(s.model, s.pools, 25)
    assert sorted(picks.tolist()) == s.pools.unlabeled.tolist()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "5", None])
def test_bad_budget_raises_value_error_naming_value(name: str, bad: object) -> None:
    s = make_setup(name)
    with pytest.raises(ValueError, match=f"budget must be a positive int, got {bad!r}".replace("(", r"\(").replace(")", r"\)")):
        s.strategy.select(s.model, s.pools, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", NAMES)
def test_no_strategy_reads_labels_of_unlabeled_samples(name: str) -> None:
    """Scrambling the hidden labels of unlabeled samples must not change the picks."""
    base = make_setup(name, seed=1)
    scrambled = base.targets.copy()
    unl = base.pools.unlabeled
    scrambled[unl] = np.random.default_rng(9).permutation(scrambled[unl] + 1) % 3
    other = make_setup(name, seed=1, targets=scrambled)
    assert not np.array_equal(other.targets[unl], base.targets[unl])
    _same(base.strategy.select(base.model, base.pools, 15), other.strategy.select(other.model, other.pools, 15))
    with pytest.raises(ValueError, match="not labeled"):
        base.pools.labels_of(unl[:1])


def test_pools_expose_no_ground_truth() -> None:
    s = make_setup("random")
    public = [a for a in dir(s.pools) if not a.startswith("_")]
    assert not {"targets", "y", "ground_truth"} & set(public)
