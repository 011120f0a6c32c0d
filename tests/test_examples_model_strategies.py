"""Smoke runs of the CIFAR-10 example on a tiny synthetic CIFAR-10 folder (slow)."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _fake_cifar(root: Path, per_batch: int = 60) -> None:
    """Python-format CIFAR-10 batches of random pixels (the pipeline, not the data, is under test)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {"data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8), "labels": (np.arange(per_batch) % 10).tolist()}
        with open(folder / name, "wb") as fh:
            pickle.dump(entry, fh)


@pytest.mark.slow
def test_cifar10_example_smoke(tmp_path: Path) -> None:
    _fake_cifar(tmp_path / "data")
    table = tmp_path / "cifar10.md"
    code = _load("cifar10").main([
        "--data-root", str(tmp_path / "data"), "--device", "cpu", "--epochs", "1", "--cycles", "2", "--initial", "40",
        "--budget", "40", "--max-train", "200", "--max-test", "50", "--subset-size", "100", "--trials", "1",
        "--strategies", "learning_loss,ncenet,coreset+learning_loss,bald,badge,vaal", "--out", str(tmp_path / "out"), "--table", str(table),
    ])
    assert code == 0
    text = table.read_text()
    for name in ("learning_loss", "ncenet", "coreset+learning_loss", "bald", "badge", "vaal"):
        assert f"| {name} |" in text


@pytest.mark.slow
def test_rmnist_runner_smoke(tmp_path: Path) -> None:
    from activelearn import datasets
    from activelearn.exceptions import DatasetNotFoundError

    try:
        datasets.load("mnist")
    except DatasetNotFoundError:
        pytest.skip("MNIST files not found")
    table = tmp_path / "t.md"
    code = _load("rmnist_model_strategies").main([
        "--strategies", "learning_loss,ncenet:distance=cosine", "--trials", "1", "--epochs", "1", "--cycles", "2",
        "--out", str(tmp_path / "out"), "--table", str(table),
    ])
    assert code == 0
    text = table.read_text()
    assert "| learning_loss |" in text and "| ncenet:distance=cosine |" in text and "| paper: DACS |" in text
