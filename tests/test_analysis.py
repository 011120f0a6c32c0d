"""Analysis tools: subset information, subset diversity, and their per-cycle recording."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist

import activelearn as al
from activelearn.analysis import SelectionAnalyzer, sample_information, selection_table, subset_diversity, subset_information
from activelearn.history import CycleRecord, History


def test_information_hand_values() -> None:
    probs = np.array([[0.5, 0.5], [1.0, 0.0], [0.25, 0.75]])
    torch.testing.assert_close(sample_information(probs), torch.tensor([math.log(2), 0.0, math.log(4 / 3)], dtype=torch.float64))
    raw = math.log(2) + math.log(4 / 3)
    assert subset_information(probs, [0, 2], normalize=False) == pytest.approx(raw)
    assert subset_information(probs, [0]) == pytest.approx(math.log(2) / raw)
    assert subset_information(probs, [0, 1, 2]) == pytest.approx(1.0)
    assert subset_information(np.ones((3, 2)), [1]) == 0.0


def test_information_rejects_bad_rows() -> None:
    with pytest.raises(ValueError, match="selected rows must lie in"):
        subset_information(np.full((3, 2), 0.5), [3])


def test_diversity_hand_value_and_chunking() -> None:
    pts = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 4.0]])  # distances 3, 4, 5
    for chunk in (1, 2, 1024):
        assert subset_diversity(pts, chunk_size=chunk) == pytest.approx(4.0)
    assert subset_diversity(pts[:1]) == 0.0


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_diversity_matches_scipy(metric: str) -> None:
    z = np.random.default_rng(0).normal(size=(37, 5))
    assert subset_diversity(z, metric=metric, chunk_size=8) == pytest.approx(pdist(z, metric).mean(), rel=1e-9)


def test_analyzer_records_every_selecting_cycle(tmp_path) -> None:  # type: ignore[no-untyped-def]
    loop = al.experiment.make_loop("digits", "ncenet", initial=20, budget=10, cycles=3, train=al.TrainConfig(epochs=3), progress=False, out_dir=tmp_path)
    loop.callbacks.append(SelectionAnalyzer())
    h = loop.run()
    info, div = h.column("subset_information"), h.column("subset_diversity")
    assert np.isfinite(info[:2]).all() and np.isnan(info[2])
    assert (info[:2] > 0).all() and (info[:2] <= 1).all() and (div[:2] > 0).all()
    saved = al.History.load_json(tmp_path / "history.json")
    assert saved[0].extra["subset_information"] == pytest.approx(info[0])


def _history(extras: list[dict[str, float]]) -> History:
    records = [CycleRecord(cycle=i, n_labeled=10 * (i + 1), interactions=10 * (i + 1), cost=10.0 * (i + 1), metrics={"accuracy": 0.5}, extra=e) for i, e in enumerate(extras)]
    return History(records=records)


def test_selection_table_means_over_scored_cycles_and_trials() -> None:
    a1 = _history([{"subset_information": 0.1, "subset_diversity": 2.0}, {"subset_information": 0.3, "subset_diversity": 4.0}, {}])
    a2 = _history([{"subset_information": 0.2, "subset_diversity": 3.0}, {}])
    plain = _history([{}, {}])
    table = selection_table({"a": [a1, a2], "plain": [plain]}).splitlines()
    assert table[2] == "| a | 0.2000 | 3.00 |"  # (0.1 + 0.3 + 0.2) / 3, (2 + 4 + 3) / 3; unscored cycles ignored
    assert table[3] == "| plain | n/a | n/a |"
