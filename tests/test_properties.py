"""Property-based tests (hypothesis) over every registered strategy and every op.

Random pool sizes (an unlabeled pool of 1, budget-sized pools), duplicated
points, constant features, tied scores, tiny and huge magnitudes: the contract
holds (unique, unlabeled, exactly ``min(budget, n_unlabeled)`` picks) and
nothing returns NaN.  ``max_examples`` is kept small so the default suite stays
fast; run with ``--hypothesis-seed`` / more examples when hunting bugs.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import activelearn as al
from conftest import features_of_kind
from activelearn import ops
from activelearn.backbones import MLP
from activelearn.loop import validate_selection
from activelearn.strategies.base import ScoreStrategy

NAMES = al.strategies.available() + ["coreset+entropy", "random+margin"]
FAST = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

KINDS = ("normal", "duplicates", "constant", "zeros")
SCALES = (1e-6, 1.0, 1e6)


def _features(rng: np.random.Generator, n: int, d: int, kind: str, scale: float) -> np.ndarray:
    return features_of_kind(rng, n, d, kind) * scale


pool_params = st.fixed_dictionaries({
    "n_labeled": st.integers(1, 8),
    "n_unlabeled": st.integers(1, 24),
    "d": st.sampled_from([1, 5]),
    "kind": st.sampled_from(KINDS),
    "scale": st.sampled_from(SCALES),
    "budget_offset": st.integers(-3, 2),  # budget = n_unlabeled + offset (clipped to >= 1)
    "seed": st.integers(0, 2**16),
})


def _setup(name: str, p: dict) -> tuple[al.strategies.Strategy, al.ALModel, al.Pools, int]:
    rng = np.random.default_rng(p["seed"])
    n = p["n_labeled"] + p["n_unlabeled"]
    x = torch.tensor(_features(rng, n, p["d"], p["kind"], p["scale"]), dtype=torch.float32)
    takes_seed = "+" in name or "seed" in al.strategies.get_class(name)._param_names()
    strategy = al.strategies.get(name, **({"seed": 0} if takes_seed else {}))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = MLP(p["d"], 3, hidden=(8,), dropout=0.5 if getattr(strategy, "needs_dropout", False) else 0.0)
    model = al.ALModel(net, num_classes=3, device="cpu")
    for ext in strategy.model_extensions():
        model.attach(ext)
    pools = al.Pools(x, num_classes=3)
    labeled = rng.choice(n, size=p["n_labeled"], replace=False)
    pools.record([al.Answer(int(i), int(rng.integers(3))) for i in labeled], cycle=0)
    pools.cycle = 1
    al.Trainer(al.TrainConfig(epochs=1, batch_size=4)).fit(model, pools, cycle=1)
    budget = max(1, p["n_unlabeled"] + p["budget_offset"])
    return strategy, model, pools, budget


@pytest.mark.parametrize("name", NAMES)
@FAST
@given(p=pool_params)
def test_strategy_contract_on_adversarial_pools(name: str, p: dict) -> None:
    strategy, model, pools, budget = _setup(name, p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # budget > pool warns by design
        picks = strategy.select(model, pools, budget)
    chosen = validate_selection(picks, pools, budget)  # unique, unlabeled, exactly min(budget, n_unlabeled)
    n_chosen = chosen.indices.size + len(chosen.groups) if isinstance(chosen, al.Query) else chosen.size
    assert n_chosen == min(budget, pools.n_unlabeled)
    if isinstance(strategy, ScoreStrategy):
        cand = pools.unlabeled
        scores = np.asarray(strategy.score(model, pools, cand), dtype=np.float64)
        assert scores.shape == cand.shape and np.isfinite(scores).all(), scores
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = strategy.select(model, pools, budget)
    if isinstance(picks, al.Query):  # cluster queries: same samples and same clusters
        np.testing.assert_array_equal(picks.indices, again.indices)
        assert [g.tolist() for g in picks.groups] == [g.tolist() for g in again.groups]
    else:
        np.testing.assert_array_equal(picks, again)  # ties broken the same way every time


# ------------------------------------------------------------------------ ops
matrix = st.fixed_dictionaries({
    "n": st.integers(1, 40),
    "d": st.sampled_from([1, 3, 8]),
    "kind": st.sampled_from(KINDS),
    "scale": st.sampled_from((1e-12, 1e-6, 1.0, 1e6, 1e12)),
    "dtype": st.sampled_from(["float32", "float64"]),
    "seed": st.integers(0, 2**16),
})


def _matrix(p: dict) -> np.ndarray:
    x = _features(np.random.default_rng(p["seed"]), p["n"], p["d"], p["kind"], p["scale"])
    return x.astype(p["dtype"])


@FAST
@given(p=matrix, frac=st.floats(0, 0.9), metric=st.sampled_from(["euclidean", "cosine"]), method=st.sampled_from(["plain", "pruned", "auto"]), data=st.data())
def test_kcenter_greedy_picks_unique_unlabeled_rows(p: dict, frac: float, metric: str, method: str, data) -> None:
    x = _matrix(p)
    n = p["n"]
    n_lab = min(int(frac * n), n - 1)
    labeled = np.random.default_rng(p["seed"]).choice(n, size=n_lab, replace=False)
    budget = data.draw(st.integers(1, n - n_lab))
    picks = ops.kcenter_greedy(x, budget, labeled=labeled, metric=metric, method=method, seed=0)
    assert picks.dtype == np.int64 and picks.size == budget
    assert np.unique(picks).size == budget and not set(picks.tolist()) & set(labeled.tolist())
    assert picks.min() >= 0 and picks.max() < n
    if method != "auto":  # plain and pruned agree
        other = ops.kcenter_greedy(x, budget, labeled=labeled, metric=metric, method="plain" if method == "pruned" else "pruned", seed=0)
        np.testing.assert_array_equal(picks, other)


@FAST
@given(p=matrix, frac=st.floats(0, 0.9), metric=st.sampled_from(["euclidean", "cosine"]), data=st.data())
def test_kcenter_greedy_distributed_single_process_equals_plain(p: dict, frac: float, metric: str, data) -> None:
    # without a process group it is the plain greedy; the 2-process equality (adversarial
    # pools included) is checked in tests/test_distributed.py
    x = _matrix(p)
    n = p["n"]
    n_lab = min(int(frac * n), n - 1)
    labeled = np.random.default_rng(p["seed"]).choice(n, size=n_lab, replace=False)
    budget = data.draw(st.integers(1, n - n_lab))
    chunk = data.draw(st.sampled_from([1, 5, 64]))  # same blocks on both sides: float32 sums depend on the block shape
    picks = ops.kcenter_greedy_distributed(x, budget, labeled=labeled, metric=metric, seed=0, chunk_size=chunk)
    plain = ops.kcenter_greedy(x, budget, labeled=labeled, metric=metric, seed=0, method="plain", chunk_size=chunk)
    np.testing.assert_array_equal(picks, plain)


@FAST
@given(p=matrix, m=st.integers(1, 5), metric=st.sampled_from(["euclidean", "cosine"]))
def test_min_distances_are_finite_and_nonnegative(p: dict, m: int, metric: str) -> None:
    x = _matrix(p)
    centers = x[: min(m, p["n"])]
    dist = np.asarray(ops.min_distances(x, centers, metric=metric))
    assert dist.shape == (p["n"],) and np.isfinite(dist).all() and (dist >= 0).all()
    if metric == "euclidean" or p["kind"] != "zeros":  # a zero row has no direction: cosine distance 1, even to itself
        atol = 1e-3 * max(1.0, float(np.abs(x).max())) if metric == "euclidean" else 1e-3
        assert np.allclose(dist[: centers.shape[0]], 0, atol=atol)


@FAST
@given(p=matrix, k=st.integers(1, 30), n_buckets=st.sampled_from([2, 4, 10, 100]))
def test_densities_are_finite(p: dict, k: int, n_buckets: int) -> None:
    x = _matrix(p)
    lsh = ops.lsh_density(x, n_buckets=n_buckets, seed=0)
    knn = ops.knn_density(x, k=k)
    for dens in (lsh, knn):
        assert dens.shape == (p["n"],) and bool(torch.isfinite(dens).all())
    if p["kind"] in ("constant", "zeros") or p["n"] == 1:
        assert torch.allclose(knn, knn[0].expand_as(knn))  # all points alike: equal densities


@FAST
@given(
    values=st.lists(st.one_of(st.floats(-1e12, 1e12, allow_nan=False), st.sampled_from([0.0, 1e-12, -1e-12, 5.0])), min_size=1, max_size=60),
    data=st.data(),
)
def test_jenks_breaks_and_labels(values: list[float], data) -> None:
    v = np.asarray(values)
    k = data.draw(st.integers(1, np.unique(v).size))
    breaks = ops.jenks_breaks(v, k)
    assert len(breaks) == k + 1 and all(np.isfinite(breaks))
    assert breaks[0] == v.min() and breaks[-1] == v.max()
    assert all(a <= b for a, b in itertools.pairwise(breaks))
    labels = np.asarray(ops.jenks_labels(v, breaks))
    assert labels.shape == v.shape and labels.min() >= 0 and labels.max() <= k - 1
    order = np.argsort(v, kind="stable")
    assert (np.diff(labels[order]) >= 0).all()  # classes are contiguous in value


@FAST
@given(p=matrix, k=st.integers(1, 6))
def test_kmeans_labels_in_range_and_centers_finite(p: dict, k: int) -> None:
    x = _matrix(p)
    k = min(k, p["n"])
    labels, centers = ops.kmeans(x, k, n_iter=10, seed=0)
    labels = labels.cpu().numpy()
    assert labels.shape == (p["n"],) and labels.min() >= 0 and labels.max() < k
    assert centers.shape[0] == k and bool(torch.isfinite(centers).all())


@FAST
@given(p=matrix, c=st.integers(2, 5))
def test_representer_ops_are_finite(p: dict, c: int) -> None:
    f = ops.with_bias(torch.as_tensor(_matrix(p), dtype=torch.float64) / max(1.0, p["scale"]))
    assert f.shape == (p["n"], p["d"] + 1)
    logits = torch.as_tensor(np.random.default_rng(p["seed"]).normal(size=(p["n"], c)))
    y = torch.arange(p["n"]) % c
    grad = ops.cross_entropy_logit_grad(logits, y)
    alpha = ops.representer_alpha(grad, 0.01)
    values = ops.representer_values(alpha, f, f)
    probs = torch.softmax(logits, dim=1)
    scores = ops.ibal_scores(probs, f, f, 0.01)
    for t in (grad, alpha, values, scores):
        assert bool(torch.isfinite(t).all())
    assert scores.shape == (p["n"],)
    torch.testing.assert_close(grad.sum(dim=1), torch.zeros(p["n"], dtype=grad.dtype), atol=1e-9, rtol=0)


_probs = st.fixed_dictionaries({"n": st.integers(2, 40), "c": st.integers(2, 6), "temp": st.sampled_from([0.1, 1.0, 10.0]), "seed": st.integers(0, 2**16)})


def _random_probs(p: dict) -> torch.Tensor:
    g = torch.Generator().manual_seed(p["seed"])
    return torch.softmax(torch.randn(p["n"], p["c"], generator=g, dtype=torch.float64) / p["temp"], dim=1)


@FAST
@given(p=_probs)
def test_symmetric_kl_is_a_nonnegative_symmetric_divergence(p: dict) -> None:
    P = _random_probs(p)
    D = ops.symmetric_kl(P, P)
    assert torch.isfinite(D).all() and (D >= 0).all()
    torch.testing.assert_close(D, D.T)
    torch.testing.assert_close(torch.diagonal(D), torch.zeros(p["n"], dtype=D.dtype), atol=1e-9, rtol=0)


@FAST
@given(p=_probs, b=st.integers(1, 5), n_lab=st.integers(0, 3))
def test_symkl_kcenter_and_badge_pick_unique_unlabeled_rows(p: dict, b: int, n_lab: int) -> None:
    P = _random_probs(p)
    n_lab = min(n_lab, p["n"] - 1)
    b = min(b, p["n"] - n_lab)
    picks = ops.symkl_kcenter(P, b, labeled=np.arange(n_lab), seed=0)
    assert picks.size == b and np.unique(picks).size == b and (picks >= n_lab).all()
    emb = torch.randn(p["n"], 3, generator=torch.Generator().manual_seed(p["seed"] + 1), dtype=torch.float64)
    picks = ops.badge_kmeanspp(P, emb, min(b, p["n"]), seed=0)
    assert picks.size == min(b, p["n"]) and np.unique(picks).size == picks.size
    g = ops.gradient_factors(P)  # p - onehot(argmax p): rows sum to 0, the argmax entry is the only negative one
    torch.testing.assert_close(g.sum(dim=1), torch.zeros(p["n"], dtype=g.dtype), atol=1e-12, rtol=0)
    assert ((g < 0).sum(dim=1) <= 1).all()


@FAST
@given(n=st.integers(2, 30), d=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_knn_typicality_is_positive_and_highest_in_the_dense_part(n: int, d: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.cat([torch.randn(n, d, generator=g, dtype=torch.float64) * 0.01, torch.full((1, d), 100.0, dtype=torch.float64)])
    k = min(3, n)
    typ = ops.knn_typicality(x, k)
    assert torch.isfinite(typ).all() and (typ > 0).all()
    assert int(torch.argmin(typ)) == n  # the outlier is the least typical


def test_every_op_is_covered() -> None:
    covered = {"kcenter_greedy", "kcenter_greedy_distributed", "min_distances", "lsh_density", "knn_density", "jenks_breaks", "jenks_labels",
               "kmeans", "with_bias", "cross_entropy_logit_grad", "representer_alpha", "representer_values", "ibal_scores",
               "symmetric_kl", "symkl_kcenter", "badge_kmeanspp", "gradient_factors", "knn_typicality"}
    assert set(ops.__all__) <= covered, f"add property tests for {sorted(set(ops.__all__) - covered)}"
