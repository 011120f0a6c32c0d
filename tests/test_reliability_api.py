"""Reliability battery, API part: every bad input is the library's own exception, raised before any state changes.

Each case is one row of a table: a callable that must raise, the exception
type, and a fragment of the message (matched literally).  Every case passes;
a known gap would be marked ``xfail(strict=True)`` with its reason, and
``docs/reliability.md`` ("Reliability battery") counts the cases.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn._validation import Interval, Options, as_integral_indices, check_label, check_param
from activelearn.exceptions import (
    ActiveLearnError,
    CheckpointError,
    InvalidInputError,
    InvalidParameterError,
    OracleError,
    SelectionError,
    UnknownStrategyError,
)
from activelearn.experiment import compare, make_loop

from conftest import blobs

X, Y = blobs(40)


def _net(width: int = 8) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(16, width), torch.nn.ReLU(), torch.nn.Linear(width, 3))


def _loop(**over: Any) -> al.ActiveLoop:
    """A 40-blob, 3-class loop trained 1 epoch per cycle; ``over`` replaces any argument."""
    kw: dict[str, Any] = dict(
        model=al.ALModel(_net(), num_classes=3, device="cpu"),
        strategy=al.strategies.get("entropy"),
        oracle=al.SimulatedOracle(Y, num_classes=3),
        pools=al.Pools(X, num_classes=3),
        budget=5,
        cycles=2,
        initial=6,
        progress=False,
        trainer=al.Trainer(al.TrainConfig(epochs=1, batch_size=8)),
    )
    kw.update(over)
    return al.ActiveLoop(kw.pop("model"), kw.pop("strategy"), kw.pop("oracle"), kw.pop("pools"), **kw)


def _nan_numpy(dtype: Any = np.float32) -> np.ndarray:
    x = X.numpy().astype(dtype)
    x[3, 2] = np.nan
    return x


def _inf_torch() -> torch.Tensor:
    x = X.clone()
    x[7, 0] = float("inf")
    return x


def _pools(inputs: Any, **kw: Any) -> Callable[[], Any]:
    return lambda: al.Pools(inputs, **kw)


# ---------------------------------------------------------------- pools (X side)
POOL_CASES = [
    ("numpy-nan", _pools(_nan_numpy()), InvalidInputError, "pool inputs hold NaN or Inf in 1 sample(s)"),
    ("numpy-f64-nan", _pools(_nan_numpy(np.float64)), InvalidInputError, "pool inputs hold NaN or Inf in 1 sample(s)"),
    ("torch-inf", _pools(_inf_torch()), InvalidInputError, "pool inputs hold NaN or Inf in 1 sample(s)"),
    ("torch-f64-nan", _pools(torch.as_tensor(_nan_numpy(np.float64))), InvalidInputError, "pool inputs hold NaN or Inf"),
    ("numpy-1d", _pools(np.zeros(10, dtype=np.float32)), InvalidInputError, "got shape (10,); for one feature per sample pass x.reshape(-1, 1)"),
    ("torch-1d", _pools(torch.zeros(10)), InvalidInputError, "got shape (10,); for one feature per sample pass x.reshape(-1, 1)"),
    ("torch-0d", _pools(torch.tensor(3.0)), InvalidInputError, "got shape ()"),
    ("empty", _pools(torch.zeros(0, 4)), InvalidInputError, "the pool is empty; pass at least one sample"),
    ("strings", _pools(np.array([["a", "b"], ["c", "d"]])), InvalidInputError, "must hold real numbers, got an array of dtype <U1"),
    ("objects", _pools(np.array([[1, None]], dtype=object)), InvalidInputError, "got an array of dtype object"),
    ("complex", _pools(torch.zeros(4, 2, dtype=torch.complex64)), InvalidInputError, "must be real, got dtype torch.complex64"),
    ("f64-overflow", _pools(np.full((3, 2), 1e300)), InvalidInputError, "beyond float32's range"),
    ("int-too-big", _pools(np.full((3, 2), 2**40, dtype=np.int64)), InvalidInputError, "float32 cannot represent exactly (limit 2**24)"),
    ("task", _pools(X, task="clasification"), InvalidParameterError, "task must be one of ['classification', 'regression'], got 'clasification'"),
    ("num-classes-0", _pools(X, num_classes=0), InvalidParameterError, "num_classes must be an int >= 1 or None, got 0"),
    ("num-classes-float", _pools(X, num_classes=2.5), InvalidParameterError, "num_classes must be an int >= 1 or None, got 2.5"),
    ("num-classes-bool", _pools(X, num_classes=True), InvalidParameterError, "num_classes must be an int >= 1 or None, got True"),
]


def _pool() -> al.Pools:
    return al.Pools(torch.zeros(6, 2), num_classes=3)


def _record(*answers: al.Answer, task: str = "classification") -> Callable[[], Any]:
    def make() -> Any:
        pools = al.Pools(torch.zeros(6, 2), num_classes=3 if task == "classification" else None, task=task)
        try:
            pools.record(list(answers))
        finally:
            assert pools.log == () and pools.n_labeled == 0 and pools.n_rejected == 0  # nothing changed
    return make


RECORD_CASES = [
    ("label-float", _record(al.Answer(0, 1.7)), InvalidInputError, "label 1.7 for index 0: classification needs an integer class index, got float"),
    ("label-small-float", _record(al.Answer(1, 0.3)), InvalidInputError, "label 0.3 for index 1: classification needs an integer class index"),
    ("label-bool", _record(al.Answer(0, True)), InvalidInputError, "label True for index 0 is a bool"),
    ("label-numpy-bool", _record(al.Answer(0, np.bool_(False))), InvalidInputError, "for index 0 is a bool"),
    ("label-string", _record(al.Answer(0, "2")), InvalidInputError, "label '2' for index 0 is not a number"),
    ("label-nan", _record(al.Answer(0, float("nan"))), InvalidInputError, "label nan for index 0 is NaN or infinite"),
    ("label-range", _record(al.Answer(0, 0), al.Answer(2, 3)), InvalidInputError, "label 3 for index 2 is outside 0..2"),
    ("label-negative", _record(al.Answer(0, -1)), InvalidInputError, "label -1 for index 0 is outside 0..2"),
    ("label-missing", _record(al.Answer(0, None)), InvalidInputError, "in-task answer for index 0 has no label"),
    ("regression-label-inf", _record(al.Answer(0, float("inf")), task="regression"), InvalidInputError, "label inf for index 0 is NaN or infinite"),
    ("regression-label-bool", _record(al.Answer(0, False), task="regression"), InvalidInputError, "label False for index 0 is a bool"),
    ("regression-label-vector", _record(al.Answer(0, 0.5), al.Answer(1, np.array([1.0, 2.0])), task="regression"), InvalidInputError, "labels must all have one shape (a scalar, or d outputs for every sample); got scalars, 2-vectors"),
    ("index-float", _record(al.Answer(1.5, 0)), InvalidInputError, "answer indices must be integral"),
    ("index-range", _record(al.Answer(6, 0)), InvalidInputError, "answer indices must lie in [0, 6)"),
    ("index-duplicate", _record(al.Answer(2, 0), al.Answer(2, 1)), InvalidInputError, "answers hold the same index twice"),
    ("declined-with-label", _record(al.Answer(-1, 1, False)), InvalidInputError, "a declined interaction (index -1) labels nobody"),
    ("cost-negative", _record(al.Answer(0, 1, cost=-1.0)), InvalidInputError, "answer cost must be a finite number >= 0, got -1.0"),
    ("cost-nan", _record(al.Answer(0, 1, cost=float("nan"))), InvalidInputError, "answer cost must be a finite number >= 0, got nan"),
]


def _examined_twice() -> None:
    pools = _pool()
    pools.record([al.Answer(0, 1)])
    with pytest.raises(InvalidInputError, match="already examined"):
        pools.record([al.Answer(1, 0), al.Answer(0, 2)])
    assert pools.n_labeled == 1 and len(pools.log) == 1
    raise InvalidInputError("checked: already examined")


POOL_VIEW_CASES = [
    ("examined-twice-changes-nothing", _examined_twice, InvalidInputError, "checked: already examined"),
    ("inputs-float-indices", lambda: _pool().inputs(np.array([0.5, 1.0])), InvalidInputError, "indices must be integral; got 1 non-integral value(s), e.g. 0.5"),
    ("inputs-bool-mask", lambda: _pool().inputs(np.array([True, False])), InvalidInputError, "a boolean mask is not a list of indices: use np.flatnonzero(mask)"),
    ("inputs-range", lambda: _pool().inputs([0, 6]), InvalidInputError, "indices must lie in [0, 6), got 0..6"),
    ("inputs-2d", lambda: _pool().inputs(np.zeros((2, 2), dtype=int)), InvalidInputError, "indices must be a 1-D array of ints, got shape (2, 2)"),
    ("labels-of-unlabeled", lambda: _pool().labels_of([1]), InvalidInputError, "labels requested for 1 sample(s) that are not labeled"),
]


# --------------------------------------------------------------- oracle
def _oracle(targets: Any = Y, **kw: Any) -> Callable[[], Any]:
    return lambda: al.SimulatedOracle(targets, **kw)


ORACLE_CASES = [
    ("targets-2d-int", _oracle(np.zeros((4, 2), dtype=np.int64)), InvalidInputError, "targets must be 1-D (one per sample), or (N, d) floats for a d-output regression task, got shape (4, 2)"),
    ("targets-nan", _oracle(np.array([0.0, np.nan])), InvalidInputError, "targets hold NaN or Inf; clean them first"),
    ("targets-torch-inf", _oracle(torch.tensor([0.0, float("inf")])), InvalidInputError, "targets hold NaN or Inf"),
    ("targets-strings", _oracle(np.array(["cat", "dog"])), InvalidInputError, "targets must be numbers, got dtype <U3"),
    ("targets-float-classes", _oracle(np.array([0.0, 1.5]), num_classes=3), InvalidInputError, "targets must be class indices in 0..2, got values 0.0..1.5"),
    ("targets-negative", _oracle(np.array([0, -1]), num_classes=3), InvalidInputError, "targets must be class indices in 0..2, got values -1..0"),
    ("targets-bool", _oracle(np.array([True, False]), num_classes=2), InvalidInputError, "targets are bools; pass class indices"),
    ("noise-negative", _oracle(noise_rate=-0.1, num_classes=3), InvalidParameterError, "noise_rate must be a number in [0.0, 1.0], got -0.1"),
    ("noise-string", _oracle(noise_rate="0.1", num_classes=3), InvalidParameterError, "noise_rate must be a number in [0.0, 1.0], got '0.1'"),
    ("noise-without-classes", _oracle(noise_rate=0.2), InvalidParameterError, "noise_rate > 0 needs num_classes >= 2"),
    ("num-classes-0", _oracle(num_classes=0), InvalidParameterError, "num_classes must be an int >= 1 or None, got 0"),
    ("seed-negative", _oracle(seed=-1), InvalidParameterError, "seed must be an int >= 0, got -1"),
    ("seed-float", _oracle(seed=1.5), InvalidParameterError, "seed must be an int >= 0, got 1.5"),
    ("cluster-threshold", _oracle(cluster_threshold=1.2), InvalidParameterError, "cluster_threshold must be a number in [0.0, 1.0], got 1.2"),
    ("cluster-cost-inf", _oracle(cluster_cost=float("inf")), InvalidParameterError, "cluster_cost must be a finite number >= 0, got inf"),
    ("cost-negative", _oracle(cost=-1.0), InvalidParameterError, "cost must be finite and >= 0"),
    ("cost-shape", _oracle(cost=np.ones(3)), InvalidParameterError, "cost must be one number or one per sample (shape (40,)), got dtype float64 shape (3,)"),
    ("in-task-shape", _oracle(in_task=np.ones(3, bool)), InvalidInputError, "in_task must be a boolean array of shape (40,)"),
    ("in-task-ints", _oracle(in_task=np.ones(40, int)), InvalidInputError, "in_task must be a boolean array of shape (40,), got dtype int64"),
    ("query-float-indices", lambda: al.Query(indices=np.array([1.0, 2.5])), InvalidInputError, "query indices must be integral; got 1 non-integral value(s), e.g. 2.5"),
    ("query-nan-index", lambda: al.Query(indices=np.array([np.nan])), InvalidInputError, "query indices must be integral"),
    ("query-bool-indices", lambda: al.Query(indices=np.array([True, False])), InvalidInputError, "query indices must be a 1-D array of ints, got dtype bool"),
    ("query-float-group", lambda: al.Query(indices=np.zeros(0, int), groups=(np.array([1.5, 2.0]),)), InvalidInputError, "a query group must be integral"),
    ("answer-range", lambda: al.SimulatedOracle(Y).answer(al.Query(indices=np.array([40]))), OracleError, "query indices must lie in [0, 40), got 40..40"),
    ("answer-empty-group", lambda: al.SimulatedOracle(Y).answer(al.Query(indices=np.zeros(0, int), groups=(np.zeros(0, int),))), OracleError, "a cluster of the query is empty"),
    ("cluster-on-regression", lambda: al.SimulatedOracle(np.linspace(0, 1, 40)).answer(al.Query(indices=np.zeros(0, int), groups=(np.array([1, 2]),))), OracleError, "cluster labels need a classification task"),
    ("audit-lengths", lambda: al.SimulatedOracle(Y).audit([1, 2], [0]), InvalidInputError, "audit needs one label per index, got 1 labels for 2 indices"),
]


# ------------------------------------------------------- strategy outputs
class _Returns(al.strategies.Strategy):
    """A strategy returning a fixed selection (whatever the budget)."""

    name = "returns_fixed"

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value

    def select(self, model: al.ALModel, pools: al.Pools, budget: int) -> Any:
        v = self.value
        return v(pools) if callable(v) else v


def _select(value: Any) -> Callable[[], Any]:
    def make() -> Any:
        loop = _loop(strategy=_Returns(value))
        try:
            loop.run()
        finally:
            assert len(loop.history) == 0 or not loop.history.records[0].selected  # no cycle ended with a bad selection
            assert loop.pools.n_labeled == 6  # the initial set only: the bad selection was never asked
    return make


def _unlabeled(k: int) -> Callable[[al.Pools], np.ndarray]:
    return lambda pools: pools.unlabeled[:k]


STRATEGY_CASES = [
    ("float-indices", _select(lambda p: p.unlabeled[:5] + 0.5), SelectionError, "a selection must be integral; got 5 non-integral value(s)"),
    ("bool-mask", _select(lambda p: p.unlabeled_mask), SelectionError, "a selection must be a 1-D array of ints, got dtype bool"),
    ("strings", _select(["a", "b"]), SelectionError, "a selection must be a 1-D array of ints, got dtype <U1"),
    ("2d", _select(lambda p: p.unlabeled[:6].reshape(2, 3)), SelectionError, "the strategy returned 6 indices, expected exactly 5"),
    ("too-few", _select(_unlabeled(4)), SelectionError, "the strategy returned 4 indices, expected exactly 5"),
    ("too-many", _select(_unlabeled(6)), SelectionError, "the strategy returned 6 indices, expected exactly 5"),
    ("duplicates", _select(lambda p: np.r_[p.unlabeled[:4], p.unlabeled[:1]]), SelectionError, "duplicate indices detected in the selection"),
    ("labeled", _select(lambda p: np.r_[p.unlabeled[:4], p.labeled[:1]]), SelectionError, "1 selected indices are not in the unlabeled pool"),
    ("out-of-range", _select(lambda p: np.r_[p.unlabeled[:4], 40]), SelectionError, "selected indices must lie in [0, 40)"),
    ("negative", _select(lambda p: np.r_[p.unlabeled[:4], -1]), SelectionError, "selected indices must lie in [0, 40)"),
    ("nan", _select(lambda p: np.r_[p.unlabeled[:4], np.nan]), SelectionError, "a selection must be integral"),
    ("empty-group", _select(lambda p: al.Query(indices=p.unlabeled[:4], groups=(np.zeros(0, int),))), SelectionError, "a query group (cluster) is empty"),
]


def test_integral_float_selection_is_accepted_not_truncated() -> None:
    """Floats that are exactly integral are indices; the loop runs and asks exactly them."""
    loop = _loop(strategy=_Returns(lambda p: p.unlabeled[:5].astype(np.float64)), cycles=2)
    loop.run()
    assert loop.pools.n_labeled == 11


# --------------------------------------------------------------- the loop
def _test_labels(y: Any) -> Callable[[], Any]:
    return lambda: _loop(test=(X[:10], y))


LOOP_CASES = [
    ("test-labels-range", _test_labels(torch.full((10,), 7)), InvalidInputError, "test targets must be class indices in 0..2, got values 7..7"),
    ("test-labels-negative", _test_labels(torch.full((10,), -1)), InvalidInputError, "test targets must be class indices in 0..2, got values -1..-1"),
    ("test-labels-float", _test_labels(torch.full((10,), 0.5)), InvalidInputError, "test targets of a classification task must be a 1-D array of class indices"),
    ("test-labels-nan", _test_labels(torch.full((10,), float("nan"))), InvalidInputError, "test targets hold NaN or Inf"),
    ("test-labels-2d", _test_labels(torch.zeros(10, 2, dtype=torch.long)), InvalidInputError, "got dtype torch.int64 shape (10, 2)"),
    ("test-numpy-nan", lambda: _loop(test=(_nan_numpy()[:10], Y[:10])), InvalidInputError, "test inputs hold NaN or Inf in 1 sample(s)"),
    ("test-1d", lambda: _loop(test=(torch.zeros(10), Y[:10])), InvalidInputError, "test inputs must have one row per sample"),
    ("test-not-pair", lambda: _loop(test=(X[:10], Y[:10], Y[:10])), InvalidInputError, "test must be a pair (inputs, targets) or a Dataset of (input, target) items, got tuple"),
    ("mode", lambda: _loop(mode="quotas"), InvalidParameterError, "mode must be 'interactions' or 'quota', got 'quotas'"),
    ("budget-negative", lambda: _loop(budget=-1), InvalidParameterError, "budget must be a positive int, got -1"),
    ("budget-bool", lambda: _loop(budget=True), InvalidParameterError, "budget must be a positive int, got True"),
    ("cycles-zero", lambda: _loop(cycles=0), InvalidParameterError, "cycles must be a positive int, got 0"),
    ("initial-negative", lambda: _loop(initial=-2), InvalidParameterError, "initial must be a non-negative int, got -2"),
    ("initial-floats", lambda: _loop(initial=[0.5, 2.0]), InvalidInputError, "initial must be a 1-D array of ints or a boolean mask"),
    ("max-select-calls", lambda: _loop(max_select_calls=0), InvalidParameterError, "max_select_calls must be a positive int, got 0"),
    ("oracle-not-oracle", lambda: _loop(oracle=object()), InvalidParameterError, "oracle must have an answer(query) method, got object"),
    ("query-float-indices", lambda: _loop().query(np.array([1.5, 2.0]), cycle=1), InvalidInputError, "query indices must be integral"),
]


def test_numpy_float64_and_int_pools_train() -> None:
    """The decision: float64 and int pools are converted to float32 up front (and train); 1-D pools are refused."""
    for inputs in (X.numpy().astype(np.float64), torch.as_tensor(X.numpy().astype(np.float64)), (X * 10).round().long()):
        loop = _loop(pools=al.Pools(inputs, num_classes=3), test=(X.numpy().astype(np.float64)[:10], Y[:10]))
        h = loop.run()
        assert loop.pools.inputs([0]).dtype == torch.float32
        assert 0.0 <= h.records[-1].metrics["accuracy"] <= 1.0
    assert al.Pools(X.double(), dtype=None).inputs([0]).dtype == torch.float64  # dtype=None keeps the input's


def test_restore_into_other_widths_fails_before_anything_changes(tmp_path) -> None:
    _loop(out_dir=tmp_path, cycles=2).run()
    other = _loop(model=al.ALModel(_net(16), num_classes=3, device="cpu"))
    before = [p.detach().clone() for p in other.model.parameters()]
    with pytest.raises(CheckpointError, match=re.escape("other shapes (saved vs this model) ['backbone.0.bias (8,) vs (16,)'")):
        other.restore(tmp_path)
    assert other.pools.n_labeled == 0 and other.pools.log == () and len(other.history) == 0
    assert all(torch.equal(a, b) for a, b in zip(before, other.model.parameters()))


# --------------------------------------------------------- TrainConfig
_DDP: tuple[Any, ...] = ()  # TrainConfig checks: landed

TRAIN_CASES = [
    ("epochs-zero", lambda: al.TrainConfig(epochs=0), InvalidParameterError, "epochs must be a positive int, got 0"),
    ("epochs-float", lambda: al.TrainConfig(epochs=2.5), InvalidParameterError, "epochs must be a positive int, got 2.5"),
    ("batch-size-zero", lambda: al.TrainConfig(batch_size=0), InvalidParameterError, "batch_size must be a positive int, got 0"),
    ("optimizer", lambda: al.TrainConfig(optimizer="rmsprop"), InvalidParameterError, "optimizer must be 'sgd', 'adam' or 'adamw', got 'rmsprop'"),
    ("loss", lambda: al.TrainConfig(loss="l1"), InvalidParameterError, "loss must be 'auto', 'cross_entropy' or 'mse', got 'l1'"),
    ("lr-zero", lambda: al.TrainConfig(lr=0.0), InvalidParameterError, "lr must be a number in (0, inf), got 0.0"),
    ("lr-nan", lambda: al.TrainConfig(lr=float("nan")), InvalidParameterError, "lr must be a number in (0, inf), got nan"),
    ("grad-clip", lambda: al.TrainConfig(grad_clip=-1.0), InvalidParameterError, "grad_clip must be a number in (0, inf) or None, got -1.0"),
    ("label-smoothing-one", lambda: al.TrainConfig(label_smoothing=1.0), InvalidParameterError, "label_smoothing must be a number in [0, 1), got 1.0"),
    ("label-smoothing-mse", lambda: al.TrainConfig(loss="mse", label_smoothing=0.1), InvalidParameterError, "applies to cross-entropy only"),
    ("unknown-field", lambda: al.TrainConfig().replace(epoch=3), InvalidParameterError, "unknown TrainConfig field(s) ['epoch']"),
    pytest.param("lr-string", lambda: al.TrainConfig(lr="0.1"), InvalidParameterError, "lr", marks=_DDP, id="lr-string"),
    pytest.param("lr-inf", lambda: al.TrainConfig(lr=float("inf")), InvalidParameterError, "lr", marks=_DDP, id="lr-inf"),
    pytest.param("milestones-float", lambda: al.TrainConfig(milestones=(2.5,)), InvalidParameterError, "milestones", marks=_DDP, id="milestones-float"),
    pytest.param("momentum-negative", lambda: al.TrainConfig(momentum=-0.5), InvalidParameterError, "momentum", marks=_DDP, id="momentum-negative"),
    pytest.param("weight-decay-negative", lambda: al.TrainConfig(weight_decay=-1.0), InvalidParameterError, "weight_decay", marks=_DDP, id="weight-decay-negative"),
]


# ------------------------------------------------------- make_loop / compare
_HARDEN: tuple[Any, ...] = ()  # landed with s3-harden

EXPERIMENT_CASES = [
    ("make-loop-strategy", lambda: make_loop("digits", "entropie"), UnknownStrategyError, "unknown strategy 'entropie'; did you mean 'entropy'"),
    ("make-loop-dataset", lambda: make_loop("mnsit", "entropy"), InvalidParameterError, "no preset for dataset 'mnsit'; known: ['cifar10', 'diabetes', 'digits'"),
    ("make-loop-backbone", lambda: make_loop("digits", "entropy", backbone="transformerxl"), InvalidParameterError, "unknown backbone 'transformerxl'"),
    ("make-loop-budget", lambda: make_loop("digits", "entropy", budget=-5), InvalidParameterError, "budget must be a positive int, got -5"),
    ("make-loop-noise", lambda: make_loop("digits", "entropy", noise_rate=2.0), InvalidParameterError, "noise_rate must be a number in [0.0, 1.0], got 2.0"),
    ("make-loop-device", lambda: make_loop("digits", "entropy", device="tpu"), InvalidParameterError, "device must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'"),
    ("make-loop-param", lambda: make_loop("digits", "entropy", strategy_params={"subsett": 3}), InvalidParameterError, "got unknown parameter(s) ['subsett']"),
    ("compare-typo-later", lambda: compare("digits", ["random", "entropie"], train=al.TrainConfig(epochs=1)), UnknownStrategyError, "unknown strategy 'entropie'"),
    pytest.param("make-loop-budget-zero", lambda: make_loop("digits", "entropy", budget=0), InvalidParameterError, "budget must be a positive int, got 0", marks=_HARDEN, id="make-loop-budget-zero"),
    pytest.param("make-loop-cycles-zero", lambda: make_loop("digits", "entropy", cycles=0), InvalidParameterError, "cycles must be a positive int, got 0", marks=_HARDEN, id="make-loop-cycles-zero"),
    ("make-loop-oracle", lambda: make_loop("digits", "entropy", oracle="human"), InvalidParameterError, "oracle must be 'simulated', 'file' or an Oracle instance, got 'human'"),
    pytest.param("compare-no-seeds", lambda: compare("digits", ["random"], seeds=()), InvalidParameterError, "seeds", marks=_HARDEN, id="compare-no-seeds"),
    pytest.param("compare-no-strategies", lambda: compare("digits", []), InvalidParameterError, "strateg", marks=_HARDEN, id="compare-no-strategies"),
]


# ----------------------------------------------------- declared constraints
CONSTRAINT_CASES = [
    ("interval-int", lambda: check_param("k", 1.0, Interval(int, 1)), InvalidParameterError, "k must be an int >= 1, got 1.0"),
    ("interval-open", lambda: check_param("p", 0.0, Interval(float, 0.0, 1.0, closed="right")), InvalidParameterError, "p must be a number in (0.0, 1.0], got 0.0"),
    ("interval-inf", lambda: check_param("t", float("inf"), Interval(float, 0)), InvalidParameterError, "t must be a finite number >= 0, got inf"),
    ("options", lambda: check_param("metric", "cos", Options(("euclidean", "cosine"))), InvalidParameterError, "metric must be one of ['euclidean', 'cosine'], got 'cos'"),
    ("indices-float", lambda: as_integral_indices([1.0, 2.2], "idx"), InvalidInputError, "idx must be integral; got 1 non-integral value(s), e.g. 2.2"),
    ("label-helper", lambda: check_label(2.5, task="classification", num_classes=None, where="row 3"), InvalidInputError, "label 2.5 for row 3 is not a class index"),
]


def test_declared_constraints_accept_what_they_describe() -> None:
    assert check_param("k", 3, Interval(int, 1)) == 3
    assert check_param("n", None, Interval(int, 1), None) is None
    assert check_param("p", 1.0, Interval(float, 0.0, 1.0)) == 1.0
    assert as_integral_indices(np.array([3.0, 1.0]), "idx").tolist() == [3, 1]
    assert check_label(2.0, task="classification", num_classes=3, where="x") == 2
    assert check_label(0.25, task="regression", num_classes=None, where="x") == 0.25


# ------------------------------------------------------------- the runner
ALL_CASES = [
    *[("pools-" + c[0], *c[1:]) for c in POOL_CASES],
    *[("record-" + c[0], *c[1:]) for c in RECORD_CASES],
    *[("pool-view-" + c[0], *c[1:]) for c in POOL_VIEW_CASES],
    *[("oracle-" + c[0], *c[1:]) for c in ORACLE_CASES],
    *[("strategy-" + c[0], *c[1:]) for c in STRATEGY_CASES],
    *[("loop-" + c[0], *c[1:]) for c in LOOP_CASES],
    *[("constraint-" + c[0], *c[1:]) for c in CONSTRAINT_CASES],
]


def _params(cases: list) -> list:
    out = []
    for c in cases:
        if hasattr(c, "marks"):  # already a pytest.param: drop its name value
            out.append(pytest.param(*c.values[1:], marks=c.marks, id=c.id))
        else:
            out.append(pytest.param(*c[1:], id=c[0]))
    return out


def _check(make: Callable[[], Any], exc: type[Exception], fragment: str) -> None:
    with pytest.raises(exc, match=re.escape(fragment)) as info:
        make()
    assert isinstance(info.value, ActiveLearnError), f"{type(info.value).__name__} is not a library exception"


@pytest.mark.parametrize("make, exc, fragment", _params(ALL_CASES))
def test_api_input_is_refused(make: Callable[[], Any], exc: type[Exception], fragment: str) -> None:
    _check(make, exc, fragment)


@pytest.mark.parametrize("make, exc, fragment", _params(TRAIN_CASES))
def test_train_config_is_refused(make: Callable[[], Any], exc: type[Exception], fragment: str) -> None:
    _check(make, exc, fragment)


@pytest.mark.parametrize("make, exc, fragment", _params(EXPERIMENT_CASES))
def test_experiment_args_are_refused(make: Callable[[], Any], exc: type[Exception], fragment: str) -> None:
    _check(make, exc, fragment)
