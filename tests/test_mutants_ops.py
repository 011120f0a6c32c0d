"""Issue 13, mutation testing of ops/ (BADGE, BatchBALD, k-means, representer, symmetric KL, typicality).

Each test checks one op against a reference written out here from its
definition (float64 brute forces, enumeration of every class configuration,
scikit-learn) or against hand-computed values, including the messages of the
errors raised for bad input.  Written for the mutants that survived the
focused test files; see docs/reliability.md, "Mutation testing".
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from activelearn.exceptions import InvalidInputError, InvalidParameterError
from activelearn.ops.badge import badge_kmeanspp, d2_draw, gradient_factors
from activelearn.ops.batchbald import conditional_entropies
from activelearn.ops.representer import cross_entropy_logit_grad, ibal_scores, representer_alpha, representer_values, with_bias
from activelearn.ops.symkl import symkl_kcenter, symmetric_kl
from activelearn.ops.typicality import knn_typicality

# ---------------------------------------------------------------- representer values (Yeh et al. 2018)


def test_cross_entropy_gradient_refuses_mismatched_targets_and_names_both_shapes() -> None:
    logits = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(InvalidInputError, match=r"need N x C logits and N targets, got \(3, 2\) and \(2,\)"):
        cross_entropy_logit_grad(logits, torch.zeros(2, dtype=torch.long))
    with pytest.raises(InvalidInputError, match=r"got \(3,\) and \(3,\)"):
        cross_entropy_logit_grad(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    # by hand: softmax(0, ln 3) = (1/4, 3/4); target 1 -> (1/4, -1/4)
    got = cross_entropy_logit_grad(torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64), torch.tensor([1]))
    torch.testing.assert_close(got, torch.tensor([[0.25, -0.25]], dtype=torch.float64))
    # targets that never name the last class still give C columns
    got = cross_entropy_logit_grad(torch.zeros(2, 3, dtype=torch.float64), torch.tensor([0, 1]))
    third = 1.0 / 3.0
    torch.testing.assert_close(got, torch.tensor([[third - 1, third, third], [third, third - 1, third]], dtype=torch.float64))


def test_representer_alpha_uses_the_given_training_set_size() -> None:
    grad = torch.tensor([[0.2, -0.2], [-0.5, 0.5]], dtype=torch.float64)
    # -grad / (2 lam n) with lam = 0.5 and n = 10 (not the 2 rows given)
    torch.testing.assert_close(representer_alpha(grad, lam=0.5, n=10), -grad / 10.0)
    torch.testing.assert_close(representer_alpha(grad, lam=0.25, n=4), -grad / 2.0)


def test_representer_values_by_hand_and_the_row_mismatch_message() -> None:
    alpha = torch.tensor([[1.0, -2.0], [0.5, 0.0]], dtype=torch.float64)  # 2 training points, 2 classes
    train = torch.tensor([[1.0, 0.0, 1.0], [0.0, 2.0, 1.0]], dtype=torch.float64)
    target = torch.tensor([[3.0, 1.0, 1.0]], dtype=torch.float64)  # f_t . f_i = 4, 3
    want = torch.tensor([[[4.0, -8.0], [1.5, 0.0]]], dtype=torch.float64)
    torch.testing.assert_close(representer_values(alpha, train, target), want)
    torch.testing.assert_close(representer_values(alpha, train, target, cls=0), want[:, :, 0])
    with pytest.raises(InvalidInputError, match=r"^alpha has 3 rows but train_features 2$"):
        representer_values(torch.zeros(3, 5, dtype=torch.float64), train, target)


def test_with_bias_appends_one_column_of_ones() -> None:
    torch.testing.assert_close(with_bias(torch.tensor([[2.0, 3.0]])), torch.tensor([[2.0, 3.0, 1.0]]))
    with pytest.raises(InvalidInputError, match=r"^features must be N x d, got shape \(3,\)$"):
        with_bias(torch.zeros(3))


def test_ibal_scores_by_hand_and_their_shape_checks() -> None:
    probs = torch.tensor([[0.5, 0.5], [1.0, 0.0]], dtype=torch.float64)  # spread sum_y p_y (1 - p_y): 0.5, 0
    feats = torch.tensor([[1.0, 2.0], [3.0, 1.0]], dtype=torch.float64)
    one = torch.tensor([[2.0, 1.0]], dtype=torch.float64)  # a single labeled row: f . sum_t f_t = 4
    # 0.5 * 4 / (2 * 0.25 * 1) = 4
    torch.testing.assert_close(ibal_scores(probs, feats, one, lam=0.25), torch.tensor([4.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(ibal_scores(probs, feats, one, lam=0.25, n=8), torch.tensor([0.5, 0.0], dtype=torch.float64))
    msg = r"^shapes do not line up: probs \(3, 2\), features \(2, 2\), labeled_features \(1, 2\)$"
    with pytest.raises(InvalidInputError, match=msg):
        ibal_scores(torch.full((3, 2), 0.5), feats, one, lam=1.0)
    with pytest.raises(InvalidInputError, match=r"labeled_features \(1, 3\)$"):
        ibal_scores(probs, feats, torch.ones(1, 3), lam=1.0)


# ---------------------------------------------------------------- symmetric KL (CDAL)


def test_symmetric_kl_names_the_bad_argument() -> None:
    good = [[0.5, 0.5]]
    with pytest.raises(InvalidInputError, match=r"^p must be 2-D"):
        symmetric_kl([0.5, 0.5], good)
    with pytest.raises(InvalidInputError, match=r"^q must be 2-D"):
        symmetric_kl(good, [0.5, 0.5])


def test_symmetric_kl_is_float64_for_float32_input() -> None:
    p = np.array([[0.25, 0.75]], dtype=np.float32)
    got = symmetric_kl(p, p[:, ::-1].copy())
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, torch.tensor([[0.5 * math.log(3.0)]], dtype=torch.float64), rtol=0, atol=1e-15)


def test_symkl_kcenter_messages_and_edge_cases() -> None:
    p = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]])
    cases = [
        ((p, 0), {}, InvalidParameterError, r"^budget must be a positive int, got 0$"),
        ((p, 1), {"chunk_size": 0}, InvalidParameterError, r"^chunk_size must be a positive int, got 0$"),
        ((p[0], 1), {}, InvalidInputError, r"^probs must be 2-D"),
        ((p, 1), {"labeled": [5]}, InvalidInputError, r"^labeled must lie in \[0, 3\), got values from 5 to 5$"),
        ((p, 3), {"labeled": [0]}, InvalidParameterError, r"^budget=3 exceeds the 2 non-labeled rows; pass budget <= 2$"),
        ((-p, 1), {}, InvalidInputError, r"^probs holds negative values; pass class probabilities \(e\.g\. a softmax output\)$"),
    ]
    for args, kwargs, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            symkl_kcenter(*args, **kwargs)
    one_hot = np.eye(3)[[0, 1, 2, 0]]  # zero probabilities are valid (clamped to 1e-12 before the logarithm)
    assert symkl_kcenter(one_hot, 2, labeled=[0]).tolist() == [1, 2]
    # divergences 1e-9 apart (float32 would tie them and pick the lower row): the farther row 2 wins
    near = np.array([[0.5, 0.5], [0.9, 0.1], [0.9 + 1e-9, 0.1 - 1e-9]])
    assert symkl_kcenter(near, 1, labeled=[0]).tolist() == [2]
    for seed in range(6):  # identical rows: every divergence is 0, yet no row is picked twice
        assert sorted(symkl_kcenter(np.full((5, 2), 0.5), 5, seed=seed).tolist()) == list(range(5))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_symmetric_kl_moves_q_to_the_device_of_p() -> None:
    p = np.random.default_rng(0).dirichlet(np.ones(3), size=4)
    q = np.random.default_rng(1).dirichlet(np.ones(3), size=5)
    got = symmetric_kl(torch.as_tensor(p, device="cuda"), q)
    torch.testing.assert_close(got.cpu(), symmetric_kl(p, q))


# ---------------------------------------------------------------- BatchBALD


def test_conditional_entropies_use_the_sample_entropies_given() -> None:
    """Collapsed configurations contribute the caller's ``sample_entropies`` (precomputed, not recomputed)."""
    probs = torch.softmax(torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64), dim=-1)
    log_joint = torch.tensor([[0.0, -1e4], [0.0, -1e4], [-1e4, 0.0]], dtype=torch.float64)  # 2 on sample 0, 1 on sample 1
    given = torch.arange(8, dtype=torch.float64).reshape(4, 2)  # not the entropies of probs
    want = given[:, 0] * 2 / 3 + given[:, 1] / 3
    torch.testing.assert_close(conditional_entropies(log_joint, probs, given), want, rtol=0, atol=1e-12)


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _brute_joint_entropy(probs: np.ndarray, rows: list[int]) -> float:
    """H[y_rows] with every class configuration enumerated: p(m) = 1/K sum_k prod_j p_k(y_j = m_j)."""
    _, k, c = probs.shape
    h = 0.0
    for config in itertools.product(range(c), repeat=len(rows)):
        pm = np.ones(k)
        for j, cls in zip(rows, config):
            pm = pm * probs[j, :, cls]
        h -= _entropy_term(pm.mean())
    return h


def _entropy_term(q: float) -> float:
    return q * math.log(q) if q > 0 else 0.0


def _brute_batchbald(probs: np.ndarray, batch: int) -> list[int]:
    """Greedy argmax of H[y_picked, y_x] - sum_j E_w H[y_j | w]; ties to the lowest row."""
    n = probs.shape[0]
    cond = [float(np.mean([_entropy(probs[j, s]) for s in range(probs.shape[1])])) for j in range(n)]
    picks: list[int] = []
    for _ in range(min(batch, n)):
        best, best_score = -1, -math.inf
        for x in range(n):
            if x in picks:
                continue
            score = _brute_joint_entropy(probs, picks + [x]) - sum(cond[j] for j in picks + [x])
            if score > best_score + 1e-12:
                best, best_score = x, score
        picks.append(best)
    return picks


def test_first_batchbald_pick_is_the_bald_argmax() -> None:
    """With nothing picked the gain is BALD = H[mean_w p] - mean_w H[p]."""
    from activelearn.ops.batchbald import batchbald_select

    for seed in range(3):
        probs = np.random.default_rng(seed).dirichlet(np.full(3, 0.7), size=(8, 5))  # N x K x C
        bald = [_entropy(probs[j].mean(0)) - np.mean([_entropy(p) for p in probs[j]]) for j in range(8)]
        assert batchbald_select(torch.as_tensor(np.log(probs)), 1, 100).tolist() == [int(np.argmax(bald))]


@pytest.mark.parametrize("seed", range(3))
def test_joint_entropies_equal_the_enumeration(seed: int) -> None:
    from activelearn.ops.batchbald import joint_entropies

    probs = np.random.default_rng(seed).dirichlet(np.full(3, 0.6), size=(7, 4))  # 7 rows, K = 4, C = 3
    picked = [5, 1]
    joint = np.ones((1, 4))
    for j in picked:  # M x K table: configuration m's probability under sample k
        joint = (joint.T[:, :, None] * probs[j][:, None, :]).reshape(4, -1).T
    want = [_brute_joint_entropy(probs, picked + [x]) for x in range(7)]
    for max_elements in (1, 20, 2**24):  # 20 // (9 * 3) -> 1 row per block; 2**24 -> one block
        got = joint_entropies(torch.as_tensor(joint), torch.as_tensor(probs), max_elements)
        np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_batchbald_exact_regime_matches_the_enumerated_greedy(seed: int) -> None:
    from activelearn.ops.batchbald import batchbald_select

    r = np.random.default_rng(seed)
    probs = r.dirichlet(np.full(3, 0.5), size=(10, 5))  # N = 10, K = 5, C = 3
    probs[7] = probs[2]  # a duplicate: BatchBALD gains nothing from the second copy
    want = _brute_batchbald(probs, 4)
    lp = torch.as_tensor(np.log(probs))
    for lazy, max_elements in ((True, 2**24), (True, 40), (False, 2**24), (False, 1)):
        got = batchbald_select(lp, 4, 1000, lazy=lazy, max_elements=max_elements)  # 3**4 = 81 <= 1000: exact
        assert got.tolist() == want, (lazy, max_elements)
    # more asked than rows: every row, in greedy order
    small = torch.as_tensor(np.log(probs[:4]))
    assert batchbald_select(small, 9, 1000).tolist() == _brute_batchbald(probs[:4], 9)


# ---------------------------------------------------------------- typicality (TypiClust)


def _brute_typicality(x: np.ndarray, k: int, squared: bool, eps: float) -> np.ndarray:
    """1 / (mean over the k nearest other rows of the (squared) Euclidean distance + eps), pairwise differences in float64."""
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)  # a row is not its own neighbour; its duplicates are
    near = np.sort(d2, axis=1)[:, :k]
    return 1.0 / ((near if squared else np.sqrt(near)).mean(1) + eps)


@pytest.mark.parametrize("squared", [False, True])
def test_typicality_matches_the_brute_force(squared: bool) -> None:
    r = np.random.default_rng(8)
    x = np.vstack([r.normal(size=(20, 3)), r.normal(size=(3, 3)) * 0.1 + 4.0])
    x[5] = x[11]  # an exact duplicate is a neighbour at distance 0
    for k, eps in ((1, 1e-5), (4, 0.5), (22, 1e-5)):
        want = _brute_typicality(x, k, squared, eps)
        for chunk in (1, 5, 23, 100):  # 23 rows: blocks of 5 leave a last one of 3
            got = knn_typicality(x, k, squared=squared, eps=eps, chunk_size=chunk)
            assert got.dtype == torch.float64
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-9)
    x32 = x.astype(np.float32)  # float32 rows, float64 work
    np.testing.assert_allclose(knn_typicality(x32, 3, squared=squared).numpy(), _brute_typicality(x32.astype(np.float64), 3, squared, 1e-5), rtol=1e-9)
    # by hand: rows 0, 3, 4 on a line, k = 2, default eps: mean distances 3.5, 2, 2.5
    np.testing.assert_allclose(knn_typicality([[0.0], [3.0], [4.0]], 2).numpy(), 1.0 / (np.array([3.5, 2.0, 2.5]) + 1e-5))


def test_typicality_bad_parameters_name_what_was_received() -> None:
    x = [[0.0], [1.0], [2.0]]
    with pytest.raises(InvalidInputError, match=r"^features must be 2-D"):
        knn_typicality([0.0, 1.0, 2.0], 1)
    with pytest.raises(InvalidParameterError, match=r"^k must be a positive int, got 0"):
        knn_typicality(x, 0)
    with pytest.raises(InvalidParameterError, match=r"^chunk_size must be a positive int, got 0"):
        knn_typicality(x, 1, chunk_size=0)
    with pytest.raises(InvalidParameterError, match=r"^k=3 neighbours need at least 4 rows, got 3; pass k <= 2$"):
        knn_typicality(x, 3)
    assert knn_typicality(x, 2).shape == (3,)  # k = n - 1 is allowed


# ---------------------------------------------------------------- BADGE


def _brute_badge(probs: np.ndarray, emb: np.ndarray, budget: int, rng: np.random.Generator, first: str) -> list[int]:
    """k-means++ seeding on the explicit gradient embeddings (p - onehot(argmax p)) outer z in float64."""
    n, c = probs.shape
    a = probs - np.eye(c)[probs.argmax(1)]
    g = (a[:, :, None] * emb[:, None, :]).reshape(n, -1)
    picks = [int(np.argmax((g * g).sum(1)))] if first == "max_norm" else [int(rng.integers(n))]
    mind = np.full(n, np.inf)
    while len(picks) < budget:
        mind = np.minimum(mind, ((g - g[picks[-1]]) ** 2).sum(1))
        w = mind.copy()
        w[picks] = 0.0
        cdf = np.cumsum(w)
        if cdf[-1] > 0:  # D^2 draw: u in [0, total), first row whose cumulative weight exceeds u
            picks.append(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")))
        else:  # every remaining row coincides with a center: uniform over the rest
            picks.append(int(rng.choice(np.setdiff1d(np.arange(n), picks))))
    return picks


def test_badge_matches_the_explicit_gradient_embeddings() -> None:
    for seed in range(3):
        r = np.random.default_rng(seed)
        p = r.dirichlet(np.full(4, 0.4), size=25)
        z = r.normal(size=(25, 5))
        z[3] = z[8]
        p[3] = p[8]  # a duplicate of a possible center
        for first in ("max_norm", "random"):
            want = _brute_badge(p, z, 10, np.random.default_rng(seed + 10), first)
            for chunk in (1, 6, 25, 16384):
                got = badge_kmeanspp(torch.as_tensor(p), torch.as_tensor(z), 10, seed=seed + 10, first=first, chunk_size=chunk)
                assert got.dtype == np.int64 and got.tolist() == want, (seed, first, chunk)
        # every row: a permutation
        assert sorted(badge_kmeanspp(p, z, 25, seed=1).tolist()) == list(range(25))
    # integer embeddings are used as float32
    zi = np.random.default_rng(5).integers(-3, 4, size=(25, 5))
    assert badge_kmeanspp(p, zi, 6, seed=2).tolist() == _brute_badge(p, zi.astype(np.float64), 6, np.random.default_rng(2), "max_norm")


def test_badge_ties_go_to_the_lowest_row_and_class() -> None:
    torch.testing.assert_close(gradient_factors(torch.tensor([[0.5, 0.5]])), torch.tensor([[-0.5, 0.5]], dtype=torch.float64))
    p = np.array([[0.2, 0.8], [0.8, 0.2], [0.8, 0.2]])
    z = np.array([[0.5], [1.0], [-1.0]])  # rows 1 and 2 share the largest ||g||
    assert badge_kmeanspp(p, z, 1).tolist() == [1]


class _Total:
    """A generator whose ``random()`` returns 1.0: u equals the total weight (rounding's worst case)."""

    def random(self) -> float:
        return 1.0


def test_d2_draw_with_u_at_the_total_takes_the_last_positive_row() -> None:
    none = np.zeros(4, dtype=bool)
    assert d2_draw(np.array([1.0, 2.0, 0.0, 0.0]), _Total(), none) == 1  # type: ignore[arg-type]
    assert d2_draw(np.array([0.0, 2.0, 0.0, 3.0]), _Total(), none) == 3  # type: ignore[arg-type]
    assert d2_draw(np.array([2.0, 0.5, 0.0, 0.0]), _Total(), none) == 1  # type: ignore[arg-type]
    assert d2_draw(np.array([1.0, 1.0, 1.0, 0.0]), _Total(), none) == 2  # type: ignore[arg-type]


def test_badge_bad_input_messages() -> None:
    p = np.full((5, 2), 0.5)
    z = np.ones((5, 3))
    cases = [
        ((p, z[0], 2), {}, InvalidInputError, r"^embeddings must be a non-empty 2-D \(U x d\) array, got shape \(3,\)$"),
        ((p, z[:0], 2), {}, InvalidInputError, r"got shape \(0, 3\)$"),
        ((p[0], z, 2), {}, InvalidInputError, r"^probs must be 2-D"),
        ((p, z, 0), {}, InvalidParameterError, r"^budget must be a positive int, got 0$"),
        ((p, z, 2), {"chunk_size": 0}, InvalidParameterError, r"^chunk_size must be a positive int, got 0$"),
        ((p, z, 2), {"first": "x"}, InvalidParameterError, r"^first must be one of \['max_norm', 'random'\], got 'x'$"),
        ((p, z, 6), {}, InvalidParameterError, r"^budget=6 exceeds the 5 rows; pass budget <= 5$"),
        ((p, z[:4], 2), {}, InvalidInputError, r"^probs has 5 rows but embeddings has 4; pass one row per sample to both$"),
    ]
    for args, kwargs, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            badge_kmeanspp(*args, **kwargs)
    bad = np.ones((8, 3))
    bad[0, :] = np.nan  # rows, not entries, are counted: two bad entries in row 0; blocks of 3 (0-2, 3-5, 6-7)
    bad[1, 1] = np.inf  # hold bad rows 0, 1 and 6, 7
    bad[6:, 2] = np.nan
    with pytest.raises(InvalidInputError, match=r"^embeddings hold NaN or Inf in 4 row\(s\); clean or impute them first$"):
        badge_kmeanspp(np.full((8, 2), 0.5), bad, 2, chunk_size=3)


def test_badge_magnitudes_beyond_float32_are_kept_in_float64() -> None:
    """float64 embeddings stay float64, float32 ones are accumulated in float64, integers become float32."""
    r = np.random.default_rng(3)
    p = r.dirichlet(np.ones(3), size=12)
    z64 = r.normal(size=(12, 2)) * 1e39  # finite in float64, inf in float32
    for seed in range(3):
        assert badge_kmeanspp(p, z64, 5, seed=seed).tolist() == _brute_badge(p, z64, 5, np.random.default_rng(seed), "max_norm")
    z32 = r.normal(size=(12, 2)).astype(np.float32)
    z32[0] = 1.5e19  # each square fits float32, their sum (4.5e38) does not
    for seed in range(3):
        want = _brute_badge(p, z32.astype(np.float64), 5, np.random.default_rng(seed), "random")
        assert badge_kmeanspp(p, z32, 5, seed=seed, first="random").tolist() == want
    zi = r.integers(-(5 * 10**9), 5 * 10**9, size=(12, 1))  # squares overflow int64
    for seed in range(3):
        want = _brute_badge(p, zi.astype(np.float32).astype(np.float64), 5, np.random.default_rng(seed), "max_norm")
        assert badge_kmeanspp(p, zi, 5, seed=seed).tolist() == want


def test_badge_never_repicks_a_center_when_all_rows_coincide() -> None:
    p = np.full((6, 2), 0.5)
    z = np.ones((6, 3))  # every distance is 0: the draws are uniform over the rows not yet picked
    for seed in range(8):
        for first in ("max_norm", "random"):
            assert sorted(badge_kmeanspp(p, z, 6, seed=seed, first=first).tolist()) == list(range(6))


def test_badge_accepts_tensors_that_require_grad() -> None:
    r = np.random.default_rng(9)
    p, z = r.dirichlet(np.ones(3), size=10), r.normal(size=(10, 4))
    zt = torch.tensor(z, requires_grad=True)
    assert badge_kmeanspp(torch.tensor(p), zt, 4, seed=1).tolist() == badge_kmeanspp(p, z, 4, seed=1).tolist()


class _Fixed:
    def __init__(self, u: float) -> None:
        self.u = u

    def random(self) -> float:
        return self.u


def test_d2_draw_locates_u_by_hand() -> None:
    none = np.zeros(4, dtype=bool)
    assert d2_draw(np.array([0.0, 0.3, 0.1, 0.0]), _Fixed(0.5), none) == 1  # total 0.4 < 1: still a D^2 draw, u = 0.2
    assert d2_draw(np.array([1.0, 1.0, 1.0, 0.0]), _Fixed(1 / 3), none) == 1  # u = 1.0 = cdf[0]: side right
    # float32 weights summed in float64: cdf 2**24, 2**24 + 1, 2**24 + 2; u = 16777217.16 (float32 sums: 16777215.2 -> row 0)
    assert d2_draw(np.array([2.0**24, 1.0, 1.0], dtype=np.float32), _Fixed(0.99999995), none[:3]) == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_typicality_and_badge_work_on_the_device_of_their_input() -> None:
    r = np.random.default_rng(0)
    x = r.normal(size=(30, 3))
    got = knn_typicality(torch.as_tensor(x, device="cuda"), 3, chunk_size=7)
    assert got.device.type == "cuda"
    torch.testing.assert_close(got.cpu(), knn_typicality(x, 3))
    p = r.dirichlet(np.ones(3), size=30)
    on_gpu = badge_kmeanspp(torch.as_tensor(p, device="cuda"), x, 6, seed=1, chunk_size=7)  # numpy embeddings follow probs
    assert on_gpu.tolist() == badge_kmeanspp(p, x, 6, seed=1)


def test_batchbald_exact_up_to_n_configs_equal_to_c_to_the_n() -> None:
    """C**n == n_configs is still enumerated exactly: 3**3 = 27 configurations for the 4th pick."""
    from activelearn.ops.batchbald import batchbald_select

    for seed in range(4):
        probs = np.random.default_rng(seed).dirichlet(np.full(3, 0.5), size=(9, 4))
        assert batchbald_select(torch.as_tensor(np.log(probs)), 4, 27).tolist() == _brute_batchbald(probs, 4)
        probs = np.random.default_rng(seed).dirichlet(np.full(2, 0.5), size=(9, 8))  # C = 2: 2**2 = 4 for the 3rd pick
        assert batchbald_select(torch.as_tensor(np.log(probs)), 3, 4).tolist() == _brute_batchbald(probs, 3)


def _sampled_reference(probs: torch.Tensor, batch: int, n_configs: int, seed: int, resample: bool = False) -> list[int]:
    """The module notes' sampled regime written out: exact while C**n <= n_configs; then the picked points'
    configurations drawn once, ``n_configs // K`` under each MC sample (same generator calls), each later pick
    extending every configuration by one label drawn under the configuration's own sample; candidates scored
    by ``1/M sum_m H[pi_m @ p_x] - E_w H[y_x | w]`` with ``pi_m`` the posterior over MC samples.
    ``resample``: every configuration redrawn at every sampled step (batchbald_redux's way)."""
    gen = torch.Generator().manual_seed(seed)
    n, k, c = probs.shape
    per = max(n_configs // k, 1)
    cond = -(probs * probs.log()).sum(2).mean(1)
    picks: list[int] = []
    log_p: torch.Tensor | None = None  # M x K once sampled

    def draw(rows: list[int]) -> torch.Tensor:  # log P[(drawing sample, draw), evaluating sample]
        choices = torch.multinomial(probs[rows].reshape(-1, c), per, replacement=True, generator=gen).reshape(len(rows), k, per)
        out = torch.zeros(k * per, k, dtype=torch.float64)
        for j, row in enumerate(rows):
            for kd in range(k):
                for d in range(per):
                    out[kd * per + d] += probs[row, :, int(choices[j, kd, d])].log()
        return out

    for _ in range(batch):
        if picks and c ** len(picks) > n_configs:
            log_p = draw(picks) if log_p is None or resample else log_p + draw(picks[-1:])
        scores = []
        for x in range(n):
            if x in picks:
                scores.append(-math.inf)
            elif log_p is None:
                scores.append(_brute_joint_entropy(probs.numpy(), picks + [x]) - float(cond[x]))
            else:
                mix = torch.softmax(log_p, dim=1) @ probs[x]  # M x C
                scores.append(float(-(mix * mix.log()).sum(1).mean()) - float(cond[x]))
        picks.append(int(np.argmax(scores)))
    return picks


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("n_configs", [20, 6])
def test_batchbald_sampled_regime_matches_the_written_out_estimator(seed: int, n_configs: int) -> None:
    """20: exact for 3 picks (3**2 <= 20), then 5 draws per MC sample; 6: sampled from the 3rd pick, 1 draw per sample."""
    from activelearn.ops.batchbald import batchbald_select

    probs = torch.as_tensor(np.random.default_rng(seed + 20).dirichlet(np.full(3, 0.4), size=(12, 4)))
    for resample in (False, True):
        want = _sampled_reference(probs, 6, n_configs, seed, resample)
        for lazy in (False, True):
            got = batchbald_select(probs.log(), 6, n_configs, generator=torch.Generator().manual_seed(seed), lazy=lazy, resample=resample)
            assert got.tolist() == want, (lazy, resample)


def test_batchbald_with_zero_probabilities() -> None:
    """0 log 0 = 0: classes a sample rules out do not turn the entropies into NaN."""
    from activelearn.ops.batchbald import batchbald_select

    probs = np.random.default_rng(2).dirichlet(np.full(3, 0.5), size=(8, 4))
    probs[[1, 4], :, 2] = 0.0
    probs[[1, 4]] /= probs[[1, 4]].sum(-1, keepdims=True)
    with np.errstate(divide="ignore"):
        lp = torch.as_tensor(np.log(probs))
    assert batchbald_select(lp, 4, 1000).tolist() == _brute_batchbald(probs, 4)
