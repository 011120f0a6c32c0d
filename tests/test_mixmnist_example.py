"""examples/mixmnist.py: the two protocols' initial sets, the paper's schedule, a tiny end-to-end run and its tables."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn.datasets import mixmnist as M
from activelearn.exceptions import DatasetNotFoundError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import mixmnist as ex


def test_baseline_schedule_is_the_papers() -> None:
    """METHODS.md: 100 epochs, Adam 1e-3, weight decay 5e-3, batch 32, lr / 10 at 70 and 90, clip 2.5, label smoothing 0.1."""
    c = ex.baseline_train(100, seed=4)
    assert (c.epochs, c.optimizer, c.lr, c.weight_decay, c.batch_size) == (100, "adam", 1e-3, 5e-3, 32)
    assert (c.milestones, c.gamma, c.grad_clip, c.label_smoothing, c.undersample_rejected, c.seed) == ((70, 90), 0.1, 2.5, 0.1, True, 4)
    assert ex.baseline_train(30, seed=0).milestones == (21, 27)  # the steps keep their place in a shorter schedule


def test_protocols_assign_starts() -> None:
    assert [ex.start_of(n, "paper") for n in ex.ALL] == ["in_task"] * 3 + ["mixed"] * 2
    assert {ex.start_of(n, "equal") for n in ex.ALL} == {"mixed"}


def test_both_starts_hold_the_same_in_task_labels() -> None:
    n = 200
    in_task = np.random.default_rng(0).random(n) < 0.6
    y = np.arange(n) % 10
    starts = {}
    for start in ("in_task", "mixed"):
        pools = al.Pools(torch.zeros(n, 3), num_classes=10)
        oracle = al.SimulatedOracle(y, num_classes=10, in_task=in_task, cost=1.0)
        ex.initial_labels(pools, oracle, in_task, 20, seed=3, start=start)
        starts[start] = pools
    a, b = starts["in_task"], starts["mixed"]
    np.testing.assert_array_equal(np.sort(a.labeled), np.sort(b.labeled))
    assert a.n_labeled == 20 and a.rejected.size == 0
    assert b.rejected.size > 0 and not in_task[b.rejected].any() and in_task[b.labeled].all()
    # the mixed start examined the order's front: every sample before its last examined one, nothing after
    order = np.random.default_rng([3, 0xA11]).permutation(n)
    examined = set(b.labeled.tolist()) | set(b.rejected.tolist())
    assert examined == set(order[: len(examined)].tolist())


def _fake_recipe(images, labels, count, **kwargs):
    return {"images": 255 - images[:count], "major": labels[:count], "minor": (labels[:count] + 1) % 10,
            "distinct": torch.full((count,), 2), "tried": torch.tensor(count)}


@pytest.mark.slow  # about 12 s: MNIST and notMNIST are read, every stage is evaluated on the 10,000 test digits
def test_tiny_run_both_protocols_and_tables(tmp_path, monkeypatch) -> None:
    try:
        al.datasets.notmnist()
        M._load_raw_mnist(None, False)
    except DatasetNotFoundError:
        pytest.skip("MNIST / notMNIST files not found")
    monkeypatch.setattr(M, "ambiguous_digits", _fake_recipe)
    monkeypatch.setenv("ACTIVELEARN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = ["--strategies", "random,contrastive_random", "--protocol", "both", "--seeds", "0", "--n-in-task", "300", "--n-ambiguous", "60",
            "--n-ood", "60", "--initial", "10", "--per-stage", "5", "--max-labels", "20", "--epochs", "1", "--backbone", "cnn:blocks=3,width=4",
            "--first-epochs", "1", "--later-epochs", "1", "--classifier-epochs", "1", "--encoder", "mlp", "--cl-batch", "64", "--out", str(out)]
    ex.main(args)
    runs = ex.load(out)
    assert sorted(runs) == [("in_task", "random"), ("mixed", "contrastive_random"), ("mixed", "random")]
    h_in, h_mixed = runs[("in_task", "random")][0], runs[("mixed", "random")][0]
    assert h_in.column("cost")[0] == 10 and h_in.meta["initial_cost"] == 10
    assert h_mixed.column("cost")[0] == h_mixed.meta["initial_cost"] > 10
    for h in (h_in, h_mixed):
        assert list(h.column("n_labeled")) == [10, 15, 20]
        assert sum(h.meta["examined_after_initial"]) == h.column("cost")[-1] - h.meta["initial_cost"]
    assert np.isfinite(runs[("mixed", "contrastive_random")][0].column("cl_accuracy")).all()
    paper, equal = ex.cost_table(out, "paper"), ex.cost_table(out, "equal")
    assert "| random | in_task |" in paper and "| contrastive_random | mixed |" in paper and "| random | mixed |" not in paper
    assert "| random | mixed |" in equal and "| random | in_task |" not in equal
    stages = ex.stage_table(out, "paper").splitlines()
    assert stages[0] == "| in-task labels | random (in_task) | contrastive_random (mixed) |" and len(stages) == 2 + 3
    assert stages[2].startswith("| 10 | 10 | ") and " (+" in stages[3]
    assert ex.seed_table(out).count("\n") == 4
    ex.main(args)  # a second call finds every run saved and runs nothing
    assert ex.load(out)[("in_task", "random")][0].meta["seconds"] == h_in.meta["seconds"]
