"""Registry behaviour and a user-defined strategy in the loop and the CLI."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import activelearn as al
from activelearn.exceptions import InvalidParameterError, UnknownStrategyError

from conftest import make_setup


@pytest.fixture(autouse=True)
def _restore_registry():
    """Keep names registered by a test from leaking into other tests."""
    from activelearn.strategies import registry

    before = dict(registry._REGISTRY)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(before)


def test_builtins_are_registered() -> None:
    assert {"random", "entropy", "least_confidence", "margin", "coreset"} <= set(al.strategies.available())
    assert al.strategies.available("*confidence") == ["least_confidence"]


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(UnknownStrategyError, match="did you mean 'entropy'"):
        al.strategies.get("entropi")


def test_unknown_and_ill_typed_params() -> None:
    with pytest.raises(InvalidParameterError, match=r"unknown parameter\(s\) \['subsett'\]"):
        al.strategies.get("entropy", subsett=10)
    with pytest.raises(InvalidParameterError, match="metric must be one of"):
        al.strategies.get("coreset", metric="manhattan")
    with pytest.raises(InvalidParameterError, match="subset must be an int or None, got 'ten'"):
        al.strategies.get("entropy", subset="ten")


def test_clash_warns_and_replaces() -> None:
    @al.strategies.register("tmp_clash")
    class A(al.strategies.RandomSampling):
        pass

    with pytest.warns(UserWarning, match="tmp_clash"):

        @al.strategies.register("tmp_clash")
        class B(al.strategies.RandomSampling):
            pass

    assert al.strategies.get_class("tmp_clash") is B


def test_score_strategy_subset_and_ties() -> None:
    @al.strategies.register("tmp_first_index")
    class Constant(al.strategies.ScoreStrategy):
        def score(self, model, pools, indices):  # every score ties
            return np.zeros(indices.size)

    s = make_setup("tmp_first_index")
    picks = s.strategy.select(s.model, s.pools, 5)
    assert picks.tolist() == s.pools.unlabeled[:5].tolist()  # ties go to the lowest index
    sub = al.strategies.get("tmp_first_index", subset=20, seed=0).select(s.model, s.pools, 5)
    assert len(set(sub.tolist())) == 5 and s.pools.unlabeled_mask[sub].all()


USER_STRATEGY = textwrap.dedent(
    '''
    import numpy as np
    import activelearn as al

    @al.strategies.register("farthest_from_mean")
    class FarthestFromMean(al.strategies.Strategy):
        """Picks the unlabeled samples whose embedding is farthest from the labeled mean."""
        requires = frozenset({"embeddings"})

        def __init__(self, *, seed=None):
            self.seed = seed

        def select(self, model, pools, budget):
            emb = model.outputs(pools, pools.unlabeled, "embeddings")["embeddings"]
            mean = model.outputs(pools, pools.labeled, "embeddings")["embeddings"].mean(0)
            dist = (emb - mean).norm(dim=1).cpu().numpy()
            return pools.unlabeled[np.argsort(-dist, kind="stable")[:budget]]
    '''
)


def test_user_strategy_runs_in_loop_and_cli(tmp_path: Path) -> None:
    plugin = tmp_path / "my_strategies.py"
    plugin.write_text(USER_STRATEGY)
    from activelearn.cli import load_plugins

    load_plugins([str(plugin)])
    history = al.experiment.run_experiment("digits", "farthest_from_mean", initial=20, budget=10, cycles=2, seed=0, progress=False, train=al.TrainConfig(epochs=5))
    assert [r.n_labeled for r in history.records] == [20, 30]
    proc = subprocess.run(
        [sys.executable, "-m", "activelearn.cli", "run", "--plugin", str(plugin), "--strategy", "farthest_from_mean",
         "--dataset", "digits", "--initial", "20", "--budget", "10", "--cycles", "2", "--epochs", "5", "--no-progress", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "farthest_from_mean on digits" in proc.stdout
    assert (tmp_path / "out" / "history.json").exists()


def test_combination_keeps_the_top_scores_among_candidates() -> None:
    s = make_setup("coreset+entropy", seed=0)
    combo = s.strategy
    cand = al.strategies.get("coreset", seed=0).select(s.model, s.pools, 20)
    scores = al.strategies.get("entropy").score(s.model, s.pools, cand)
    picks = combo.select(s.model, s.pools, 10)
    assert set(picks.tolist()) <= set(cand.tolist())
    assert sorted(picks.tolist()) == sorted(cand[np.argsort(-scores, kind="stable")[:10]].tolist())
    with pytest.raises(InvalidParameterError, match="not a score-based"):
        al.strategies.get("entropy+coreset")
    with pytest.raises(InvalidParameterError, match="eta must be a number >= 1"):
        al.strategies.get("coreset+entropy", eta=0.5)


def test_describe_says_what_a_strategy_needs() -> None:
    from activelearn.strategies.registry import describe

    assert describe("coreset").endswith("(needs: outputs embeddings)")
    assert "a backbone with dropout" in describe("bald")
    assert "attaches VAALModule" in describe("vaal")
    assert describe("random").endswith("(needs: nothing from the model)")

    @al.strategies.register("_described")
    class Described(al.strategies.Strategy):
        """Pick the first ones.

        More text."""

        requires = frozenset({"logits"})

        def select(self, model, pools, budget):  # type: ignore[no-untyped-def]
            return pools.unlabeled[:budget]

    try:
        assert describe("_described") == "Pick the first ones (needs: outputs logits)"
    finally:
        al.strategies.registry._REGISTRY.pop("_described")
