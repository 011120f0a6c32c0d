"""Bad input is refused at the boundary, with the library's exceptions, before any state changes.

Every row of the table in docs/reliability.md names one test id of this file
(or of test_file_oracle.py / test_checkpoint.py); keep them in sync.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn import ops
from activelearn.cli import main
from activelearn.determinism import deterministic_mode
from activelearn.exceptions import (
    ActiveLearnError,
    CheckpointError,
    DatasetNotFoundError,
    InvalidInputError,
    InvalidParameterError,
    OracleError,
    UnknownStrategyError,
)
from activelearn.experiment import make_loop

from conftest import blobs


def _loop(**over) -> al.ActiveLoop:
    """A small loop on 40 blobs (3 classes) with a pools/oracle pair; ``over`` replaces arguments."""
    x, y = blobs(40)
    kw = dict(
        model=al.ALModel(torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)), num_classes=3, device="cpu"),
        strategy=al.strategies.get("entropy"),
        oracle=al.SimulatedOracle(y, num_classes=3),
        pools=al.Pools(x, num_classes=3),
        budget=5,
        cycles=2,
        initial=6,
        progress=False,
    )
    kw.update(over)
    return al.ActiveLoop(kw.pop("model"), kw.pop("strategy"), kw.pop("oracle"), kw.pop("pools"), **kw)


def _nan_pool() -> None:
    x, _ = blobs(40)
    x[5, 2] = float("nan")
    al.Pools(x, num_classes=3)


def _inf_targets() -> None:
    al.SimulatedOracle(np.array([0.0, 1.0, np.inf]))


def _test_nan() -> None:
    x, y = blobs(10)
    x[0, 0] = float("inf")
    _loop(test=(x, torch.as_tensor(y)))


def _mismatched_lengths() -> None:
    _, y = blobs(39)
    _loop(oracle=al.SimulatedOracle(y, num_classes=3))


def _test_lengths() -> None:
    x, y = blobs(10)
    _loop(test=(x, torch.as_tensor(y[:9])))


def _labels_out_of_range() -> None:
    al.SimulatedOracle(np.array([0, 1, 3]), num_classes=3)


def _bundle_labels_out_of_range() -> None:
    al.datasets.DatasetBundle(name="t", train_x=torch.zeros(4, 2), train_y=torch.tensor([0, 1, 2, 7]), test_x=torch.zeros(1, 2), test_y=torch.tensor([0]), num_classes=3)


def _bundle_lengths() -> None:
    al.datasets.DatasetBundle(name="t", train_x=torch.zeros(4, 2), train_y=torch.tensor([0, 1, 2]), test_x=torch.zeros(1, 2), test_y=torch.tensor([0]), num_classes=3)


def _bundle_nan() -> None:
    x = torch.zeros(4, 2)
    x[1, 1] = float("nan")
    al.datasets.DatasetBundle(name="t", train_x=x, train_y=torch.tensor([0, 1, 2, 0]), test_x=torch.zeros(1, 2), test_y=torch.tensor([0]), num_classes=3)


def _one_class() -> None:
    al.datasets.DatasetBundle(name="t", train_x=torch.zeros(4, 2), train_y=torch.tensor([2, 2, 2, 2]), test_x=torch.zeros(1, 2), test_y=torch.tensor([2]), num_classes=3)


def _initial_duplicates() -> None:
    _loop(initial=[1, 2, 2, 5])


def _initial_out_of_range() -> None:
    _loop(initial=[1, 40])


def _initial_whole_pool() -> None:
    _loop(initial=np.arange(40))


def _initial_size_too_big() -> None:
    _loop(initial=40)


def _budget_zero() -> None:
    _loop(budget=0)


def _cycles_float() -> None:
    _loop(cycles=2.5)


def _unknown_strategy() -> None:
    al.strategies.get("entropie")


def _unknown_param() -> None:
    al.strategies.get("entropy", subsett=10)


def _ill_typed_param() -> None:
    al.strategies.get("entropy", subset="ten")


def _strategy_instance() -> None:
    _loop(strategy="entropy")


def _missing_outputs() -> None:
    _x, _y = blobs(40)
    loop = _loop(model=al.ALModel(torch.nn.Linear(16, 1), num_classes=1, task="regression", device="cpu"))
    loop.run()


def _unknown_dataset() -> None:
    al.datasets.load("mnsit")


def _dataset_root_empty(tmp_path: Path) -> None:
    al.datasets.mnist(root=tmp_path)


def _noise_rate() -> None:
    al.SimulatedOracle(np.array([0, 1]), num_classes=2, noise_rate=1.5)


def _unavailable_device() -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    al.ALModel(torch.nn.Linear(2, 2), num_classes=2, device="cuda")


def _kcenter_nan() -> None:
    x = np.random.default_rng(0).random((20, 3))
    x[4, 0] = np.nan
    ops.kcenter_greedy(x, 3)


def _kcenter_labeled_range() -> None:
    ops.kcenter_greedy(np.random.default_rng(0).random((5, 3)), 2, labeled=[7])


def _jenks_inf() -> None:
    ops.jenks_breaks([0.0, 1.0, np.inf, 2.0], 2)


def _jenks_too_many_classes() -> None:
    ops.jenks_breaks([1.0, 2.0, 2.0], 3)


def _density_nan() -> None:
    z = torch.rand(10, 4)
    z[0, 0] = float("nan")
    ops.knn_density(z, k=3)


def _resume_no_checkpoint(tmp_path: Path) -> None:
    al.experiment.resume(tmp_path)


CASES: list[tuple[str, Callable, type[Exception], str]] = [
    ("pool-nan-features", _nan_pool, InvalidInputError, r"pool inputs hold NaN or Inf in 1 sample\(s\); clean or drop them"),
    ("oracle-inf-targets", _inf_targets, InvalidInputError, r"targets hold NaN or Inf; clean them first"),
    ("test-inf-features", _test_nan, InvalidInputError, r"test inputs hold NaN or Inf"),
    ("oracle-pool-length", _mismatched_lengths, InvalidInputError, r"the oracle knows 39 samples but the pool has 40; build both from the same"),
    ("test-length", _test_lengths, InvalidInputError, r"test inputs and targets differ in length: 10 vs 9"),
    ("oracle-label-range", _labels_out_of_range, InvalidInputError, r"targets must be class indices in 0\.\.2, got values 0\.\.3"),
    ("bundle-label-range", _bundle_labels_out_of_range, InvalidInputError, r"train_y labels must lie in 0\.\.2 \(num_classes=3\), got values from 0 to 7"),
    ("bundle-length", _bundle_lengths, InvalidInputError, r"train_x has 4 samples but train_y has 3; they must match"),
    ("bundle-nan", _bundle_nan, InvalidInputError, r"train_x holds NaN or Inf; clean or drop those samples"),
    ("one-class", _one_class, InvalidInputError, r"every train_y label is class 2: a pool with one class"),
    ("initial-duplicates", _initial_duplicates, InvalidInputError, r"initial holds duplicate indices; pass each index once"),
    ("initial-range", _initial_out_of_range, InvalidInputError, r"initial must lie in \[0, 40\), got values from 1 to 40"),
    ("initial-whole-pool", _initial_whole_pool, InvalidParameterError, r"the initial set covers the whole pool of 40; leave samples"),
    ("initial-size", _initial_size_too_big, InvalidParameterError, r"initial=40 would label the whole pool of 40; use fewer"),
    ("budget-zero", _budget_zero, InvalidParameterError, r"budget must be a positive int, got 0"),
    ("cycles-float", _cycles_float, InvalidParameterError, r"cycles must be a positive int, got 2\.5"),
    ("unknown-strategy", _unknown_strategy, UnknownStrategyError, r"unknown strategy 'entropie'; did you mean 'entropy'.*\? Available: "),
    ("unknown-param", _unknown_param, InvalidParameterError, r"strategy 'entropy' got unknown parameter\(s\) \['subsett'\]; it accepts \['subset', 'seed'"),
    ("ill-typed-param", _ill_typed_param, InvalidParameterError, r"subset must be an int or None, got 'ten'"),
    ("strategy-not-instance", _strategy_instance, InvalidParameterError, r"strategy must be a Strategy instance, got str; build one with activelearn\.strategies\.get"),
    ("missing-model-outputs", _missing_outputs, InvalidParameterError, r"strategy 'entropy' needs model outputs \['probs'\] that this model does not provide"),
    ("unknown-dataset", _unknown_dataset, InvalidParameterError, r"unknown dataset 'mnsit'\. Did you mean 'mnist'"),
    ("noise-rate", _noise_rate, InvalidParameterError, r"noise_rate must be a number in \[0\.0, 1\.0\], got 1\.5"),
    ("cuda-unavailable", _unavailable_device, InvalidParameterError, r"device 'cuda' requested but CUDA is not available; pass device='cpu'"),
    ("ops-kcenter-nan", _kcenter_nan, InvalidInputError, r"features holds NaN or Inf in 1 row\(s\); clean or impute them first"),
    ("ops-kcenter-labeled", _kcenter_labeled_range, InvalidInputError, r"labeled must lie in \[0, 5\), got values from 7 to 7"),
    ("ops-jenks-inf", _jenks_inf, InvalidInputError, r"values holds 1 NaN or infinite value\(s\); remove them first"),
    ("ops-jenks-classes", _jenks_too_many_classes, InvalidParameterError, r"n_classes must be between 1 and the number of distinct values \(2\), got 3"),
    ("ops-density-nan", _density_nan, InvalidInputError, r"z holds NaN or Inf in 1 row\(s\)"),
]

PATH_CASES: list[tuple[str, Callable, type[Exception], str]] = [
    ("dataset-root-missing-files", _dataset_root_empty, DatasetNotFoundError, r"MNIST"),
    ("resume-no-checkpoint", _resume_no_checkpoint, CheckpointError, r"no checkpoint at .*checkpoint\.pt; a run writes one to its out_dir"),
]


@pytest.mark.parametrize("make, exc, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(make: Callable, exc: type[Exception], message: str) -> None:
    with pytest.raises(exc, match=message) as info:
        make()
    assert isinstance(info.value, ActiveLearnError)
    assert isinstance(info.value, (ValueError, RuntimeError, KeyError, FileNotFoundError))


@pytest.mark.parametrize("make, exc, message", [c[1:] for c in PATH_CASES], ids=[c[0] for c in PATH_CASES])
def test_bad_input_on_disk(make: Callable, exc: type[Exception], message: str, tmp_path: Path) -> None:
    with pytest.raises(exc, match=message) as info:
        make(tmp_path)
    assert isinstance(info.value, ActiveLearnError)


# ------------------------------------------------------------- no state changed
class _Liar:
    """An oracle answering a sample it was not asked about, or with a label out of range."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def answer(self, query: al.Query) -> list[al.Answer]:
        idx = [int(i) for i in query.indices]
        if self.mode == "unasked":
            idx[0] = next(i for i in range(1000) if i not in idx)
        if self.mode == "missing":
            idx = idx[:-1]
        labels = [9 if (self.mode == "label" and k == 2) else 0 for k in range(len(idx))]
        return [al.Answer(i, y) for i, y in zip(idx, labels)]


@pytest.mark.parametrize(
    "mode, exc, message",
    [
        ("unasked", OracleError, r"the oracle answered about indices it was not asked"),
        ("missing", OracleError, r"the oracle left 1 queried sample\(s\) unanswered"),
        ("label", InvalidInputError, r"label 9 for index \d+ is outside 0\.\.2"),
    ],
    ids=["unasked", "missing", "label"],
)
def test_bad_oracle_answers_change_nothing(mode: str, exc: type[Exception], message: str) -> None:
    loop = _loop(oracle=_Liar(mode))
    with pytest.raises(exc, match=message):
        loop.query(np.array([3, 4, 5]), cycle=1)
    assert loop.pools.n_labeled == 0 and loop.pools.log == ()


def test_duplicate_answers_change_nothing() -> None:
    pools = al.Pools(torch.zeros(5, 2), num_classes=2)
    with pytest.raises(InvalidInputError, match="answers hold the same index twice"):
        pools.record([al.Answer(1, 0), al.Answer(1, 1)])
    assert pools.n_labeled == 0 and pools.log == ()


# ---------------------------------------------------------------------- CLI
def test_cli_unknown_strategy_lists_close_matches(capsys) -> None:
    assert main(["run", "--strategy", "margn", "--dataset", "digits"]) == 2
    err = capsys.readouterr().err
    assert "activelearn: error: unknown strategy 'margn'; did you mean 'margin'?" in err


def test_cli_bad_param_syntax(capsys) -> None:
    assert main(["run", "--strategy", "entropy", "--param", "subset"]) == 2
    assert "--param expects key=value, got 'subset'" in capsys.readouterr().err


def test_cli_ill_typed_param(capsys) -> None:
    assert main(["run", "--strategy", "entropy", "--param", "subset=ten", "--epochs", "1", "--cycles", "1", "--no-progress"]) == 2
    assert "subset must be an int or None, got 'ten'" in capsys.readouterr().err


def test_cli_refuses_to_overwrite_a_checkpoint(tmp_path: Path, capsys) -> None:
    (tmp_path / "checkpoint.pt").write_bytes(b"x")
    assert main(["run", "--strategy", "entropy", "--out", str(tmp_path)]) == 2
    assert f"{tmp_path} already holds the checkpoint of a run; continue it with `activelearn run --resume {tmp_path}`" in capsys.readouterr().err


def test_cli_run_without_strategy(capsys) -> None:
    assert main(["run"]) == 2
    assert "activelearn run needs --strategy NAME (or --resume OUT" in capsys.readouterr().err


def test_cli_missing_dataset_root(tmp_path: Path, capsys) -> None:
    assert main(["run", "--strategy", "entropy", "--dataset", "mnist", "--data-root", str(tmp_path)]) == 2
    assert "activelearn: error:" in capsys.readouterr().err


# -------------------------------------------------------------- determinism
def _records(h: al.History) -> list:
    return [(r.n_labeled, r.metrics, r.selected) for r in h.records]


def test_two_runs_with_one_seed_give_identical_selections_and_histories() -> None:
    kw = dict(initial=20, budget=15, cycles=3, seed=4, train=al.TrainConfig(epochs=5, batch_size=16, seed=4), progress=False, deterministic=True)
    a = make_loop("digits", "coreset", **kw)
    b = make_loop("digits", "coreset", **kw)
    ha, hb = a.run(), b.run()
    assert _records(ha) == _records(hb)
    assert a.pools.log == b.pools.log
    assert len(ha.records[0].selected) == 15


def test_deterministic_mode_is_scoped() -> None:
    before = torch.are_deterministic_algorithms_enabled()
    with deterministic_mode(True):
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert torch.are_deterministic_algorithms_enabled() == before
    with deterministic_mode(False):
        assert torch.are_deterministic_algorithms_enabled() == before


# ------------------------------------------------------- the docs table is live
def test_every_test_named_in_docs_reliability_exists() -> None:
    import re

    root = Path(__file__).resolve().parents[1]
    text = (root / "docs" / "reliability.md").read_text()
    rows = [line for line in text.splitlines() if re.match(r"^\| \d+ \|", line)]
    assert len(rows) >= 20
    for row in rows:
        ids = re.findall(r"`(test_\w+\.py)::(test_\w+)(?:\[([^\]]+)\])?`", row)
        assert ids, f"row without a test: {row}"
        for file, func, param in ids:
            source = (root / "tests" / file).read_text()
            assert f"def {func}(" in source, f"{file}::{func} named in docs/reliability.md does not exist"
            if param:
                assert f'"{param}"' in source, f"{file}::{func}[{param}] named in docs/reliability.md does not exist"
