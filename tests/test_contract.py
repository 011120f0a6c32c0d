"""The contract every registered strategy must satisfy (parametrised over the registry)."""

from __future__ import annotations

import warnings

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


# --------------------------------------------------------------------------- resume
# A run stopped anywhere and resumed from its checkpoint (fresh objects, as a new
# process would build) must give the same selections, History and annotation log
# as the uninterrupted run.  Timings (train_seconds, select_seconds) are the only
# fields left out of the comparison: they are wall-clock measurements.

#: small settings so that every strategy runs three cycles in well under a second
FAST_PARAMS: dict[str, dict] = {
    "contrastive_distance": dict(first_epochs=2, later_epochs=1, batch_size=32, rep_dim=16, proj_dim=16, kmeans_iter=10, classifier_steps=20, classifier_epochs=2),
    "contrastive_random": dict(first_epochs=2, later_epochs=1, batch_size=32, rep_dim=16, proj_dim=16, kmeans_iter=10, classifier_steps=20, classifier_epochs=2),
    "ibal_d": dict(ae_epochs=2, latent_dim=4),
    "entropy_d": dict(ae_epochs=2, latent_dim=4),
    "cluster_annotation": dict(scenario="sample+cluster", cluster_size=8, rank="purity"),  # "all" would label the 120 points at once
}


class Stop(Exception):
    """The simulated crash."""


def build_resume_loop(name: str, out, *, mode: str = "interactions", every: int = 0, oracle=None) -> al.ActiveLoop:
    """A 3-cycle loop on 120 blob points (every ``every``-th not in the task when ``every`` > 0)."""
    import torch

    from activelearn.backbones import MLP
    from conftest import blobs

    x, y = blobs(120, seed=0)
    in_task = (np.arange(120) % every != 0) if every else None
    takes_seed = "+" in name or "seed" in al.strategies.get_class(name)._param_names()
    params = FAST_PARAMS.get(name, {}) if "+" not in name else {}
    strategy = al.strategies.get(name, **({"seed": 5} if takes_seed else {}), **params)
    drop = any(getattr(al.strategies.get_class(part), "needs_dropout", False) for part in name.split("+"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = MLP(16, 3, hidden=(32, 16), dropout=0.5 if drop else 0.0)
    model = al.ALModel(net, num_classes=3, device="cpu", seed=0)
    pools = al.Pools(x, num_classes=3)
    oracle = oracle if oracle is not None else al.SimulatedOracle(y, num_classes=3, in_task=in_task)
    trainer = al.Trainer(al.TrainConfig(epochs=2, batch_size=16, seed=0))
    initial = np.flatnonzero(in_task)[:12] if every else 12
    return al.ActiveLoop(model, strategy, oracle, pools, trainer=trainer, test=(x[:40], torch.as_tensor(y[:40])),
                         budget=6, cycles=3, initial=initial, seed=0, progress=False, out_dir=out, mode=mode)


def books(loop: al.ActiveLoop) -> str:
    """Everything a resumed run must reproduce, as one canonical string (NaN-safe)."""
    import json
    from dataclasses import asdict

    records = [{k: v for k, v in asdict(r).items() if k not in ("train_seconds", "select_seconds")} for r in loop.history.records]
    asked = list(getattr(loop.oracle, "asked", []))
    return json.dumps({"records": records, "meta": loop.history.meta, "log": [a.to_dict() for a in loop.pools.log], "asked": asked},
                      sort_keys=True, default=str)


def interrupt(loop: al.ActiveLoop, where: str, cycle: int, nth: int = 1) -> None:
    """Make ``loop`` raise :class:`Stop` at the ``nth`` call of ``where`` in ``cycle``.

    ``"fit"``: training of ``cycle`` (so the run stopped after cycle ``cycle - 1``);
    ``"select"``: after the strategy's real ``select`` ran (its state advanced) in
    ``cycle``; ``"oracle"``: when the oracle is asked the ``nth`` query of log cycle ``cycle``.
    """
    calls = {"n": 0}

    def hit(c: int) -> bool:
        if c == cycle:
            calls["n"] += 1
            return calls["n"] == nth
        return False

    if where == "fit":
        fit = loop.trainer.fit

        def failing_fit(model, pools, *, cycle: int = 0):
            if hit(cycle):
                raise Stop
            return fit(model, pools, cycle=cycle)

        loop.trainer.fit = failing_fit  # type: ignore[method-assign]
    elif where == "select":
        select = loop.strategy.select

        def failing_select(model, pools, budget):
            out = select(model, pools, budget)
            if hit(pools.cycle):
                raise Stop
            return out

        loop.strategy.select = failing_select  # type: ignore[method-assign]
    else:
        answer = loop.oracle.answer

        def failing_answer(query):
            if hit(query.cycle):
                raise Stop
            return answer(query)

        loop.oracle.answer = failing_answer  # type: ignore[method-assign]


def check_resume(name: str, tmp_path, points, **kw) -> None:
    ref = build_resume_loop(name, tmp_path / "ref", **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.run()
    expected = books(ref)
    for where, cycle, nth in points:
        out = tmp_path / f"{where}{cycle}_{nth}"
        loop = build_resume_loop(name, out, **kw)
        interrupt(loop, where, cycle, nth)
        with warnings.catch_warnings(), pytest.raises(Stop):
            warnings.simplefilter("ignore")
            loop.run()
        again = build_resume_loop(name, out, **kw).restore()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            again.run()
        assert books(again) == expected, f"{name}: resumed after a stop in {where} (cycle {cycle}, call {nth}) differs"


#: (where, cycle, nth): stopped after cycle 0 and after cycle 1, inside cycle 1's select (after it ran), and
#: while the oracle is asked cycle 1's picks (log cycle 2)
STOPS = [("fit", 1, 1), ("fit", 2, 1), ("select", 1, 1), ("oracle", 2, 1)]


@pytest.mark.parametrize("name", al.strategies.available() + ["coreset+ibal_d"])
def test_resume_equals_uninterrupted_run(name: str, tmp_path) -> None:
    check_resume(name, tmp_path, STOPS)


#: quota mode on an open-set pool: also stopped at the second select / ask of a cycle
QUOTA_FAST = ["random", "entropy", "contrastive_distance", "contrastive_random", "cluster_annotation"]


@pytest.mark.parametrize("name", [n if n in QUOTA_FAST else pytest.param(n, marks=pytest.mark.slow) for n in al.strategies.available()])
def test_quota_mode_resume_equals_uninterrupted_run(name: str, tmp_path) -> None:
    probe = build_resume_loop(name, tmp_path / "probe", mode="quota", every=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe.run()
    calls = [r.extra.get("select_calls", 0) for r in probe.history.records]
    assert max(calls) >= 2, f"the stops below need a cycle with two select calls, got {calls}"
    c = calls.index(max(calls))
    check_resume(name, tmp_path, [("fit", 1, 1), ("select", c, 2), ("oracle", c + 1, 2)], mode="quota", every=2)


def test_resumed_ibal_d_scores_with_the_saved_autoencoder(tmp_path, monkeypatch) -> None:
    """The autoencoder is part of the strategy's state: a resumed run does not train it again."""
    ref = build_resume_loop("ibal_d", tmp_path / "ref")
    ref.run()
    loop = build_resume_loop("ibal_d", tmp_path / "a")
    interrupt(loop, "fit", 2)  # after cycle 1's selection (which trained the autoencoder) ...
    with pytest.raises(Stop):
        loop.run()
    assert loop.strategy.state_dict()["weights"]

    def no_training(*a, **k):
        raise AssertionError("the autoencoder was trained again")

    monkeypatch.setattr("activelearn.strategies.ibal.fit_autoencoder", no_training)
    again = build_resume_loop("ibal_d", tmp_path / "a").restore()
    assert again.strategy.state_dict()["weights"]
    picks = again.strategy.select(again.model, again.pools, 6)  # ... a fresh strategy scores with the saved one
    assert picks.size == 6
    again.run()
    assert books(again) == books(ref)


@pytest.mark.parametrize("name", ["contrastive_distance", "ibal_d", "entropy"])
def test_file_oracle_run_resumed_at_every_query_equals_simulated_run(name: str, tmp_path) -> None:
    """A person answering files stops the run at every query; each resume continues exactly.

    The FileOracle answers what the simulated oracle would (the person writes the
    true labels), so the History and the log must equal the simulated run's.
    """
    import json

    from conftest import blobs

    _, y = blobs(120, seed=0)
    ref = build_resume_loop(name, tmp_path / "ref")
    ref.run()
    out, queries = tmp_path / "run", tmp_path / "queries"
    resumes = 0
    while True:
        loop = build_resume_loop(name, out, oracle=al.FileOracle(queries, num_classes=3))
        if (out / "checkpoint.pt").exists():
            loop.restore()
        try:
            loop.run()
            break
        except al.AnswersPending:
            resumes += 1
            q = max((json.loads(p.read_text()) for p in queries.glob("query_*.json")), key=lambda d: d["cycle"])
            (queries / q["answers_json"]).write_text(json.dumps({str(i): int(y[i]) for i in q["indices"]}))
    assert resumes == 3  # the initial set and two selections

    def comparable(lp: al.ActiveLoop) -> str:
        return books(lp).split('"log"')[1]  # records, meta and log; the file oracle keeps no "asked" list

    assert comparable(loop) == comparable(ref)
