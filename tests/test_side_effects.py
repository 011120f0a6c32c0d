"""No process-global side effects: plotting leaves matplotlib's backend alone, augmentation
draws from the trainer's generator and not from torch's global RNG."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn.backbones import MLP
from activelearn.file_oracle import FileOracle

matplotlib = pytest.importorskip("matplotlib")


@pytest.fixture
def foreign_backend():
    """Switch to a backend a notebook would use (inline if available, else svg); restore after."""
    import matplotlib.pyplot as plt

    before = matplotlib.get_backend()
    inline = "module://matplotlib_inline.backend_inline"
    wanted = inline if importlib.util.find_spec("matplotlib_inline") and importlib.util.find_spec("IPython") else "svg"
    try:
        matplotlib.use(wanted)
    except Exception:  # noqa: BLE001 - an inline backend that cannot load here: svg is just as foreign
        wanted = "svg"
        matplotlib.use(wanted)
    figs = plt.get_fignums()
    yield matplotlib.get_backend(), figs
    plt.close("all")
    matplotlib.use(before)


def _history() -> al.History:
    h = al.History(meta={"strategy": "random"})
    for c, (n, acc) in enumerate([(10, 0.5), (20, 0.6), (30, 0.7)]):
        h.append(al.CycleRecord(cycle=c, n_labeled=n, interactions=n, cost=float(n), metrics={"accuracy": acc}))
    return h


def test_history_plot_to_file_keeps_the_backend(tmp_path: Path, foreign_backend) -> None:
    import matplotlib.pyplot as plt

    backend, figs = foreign_backend
    path = tmp_path / "curve.png"
    ax = _history().plot(path)
    assert matplotlib.get_backend() == backend
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.get_fignums() == figs  # the figure was not left open in pyplot
    assert [tuple(line.get_ydata()) for line in ax.get_lines()] == [(0.5, 0.6, 0.7)]


def test_file_oracle_images_keep_the_backend(tmp_path: Path, foreign_backend) -> None:
    backend, _ = foreign_backend
    images = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    oracle = FileOracle(tmp_path, num_classes=2, inputs=images)
    with pytest.raises(al.exceptions.AnswersPending):
        oracle.answer(al.Query(np.array([1, 4])))
    assert matplotlib.get_backend() == backend
    sheets = list(tmp_path.glob("*/contact_sheet.png"))
    assert len(sheets) == 1 and (sheets[0].parent / "4.png").is_file()


class _Recorder:
    """A transform that takes a generator: records it and shifts by a draw from it."""

    def __init__(self) -> None:
        self.generators: list[torch.Generator | None] = []

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        self.generators.append(generator)
        return x + torch.rand((), generator=generator)


def _fit(transform, seed: int = 0) -> torch.Tensor:
    x = torch.randn(24, 16, generator=torch.Generator().manual_seed(1))
    pools = al.Pools(x, num_classes=3)
    pools.record(al.SimulatedOracle(np.arange(24) % 3, num_classes=3).answer(al.Query(np.arange(24))), cycle=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = al.ALModel(MLP(16, 3, hidden=(8,)), num_classes=3, device="cpu", seed=0)
    before = torch.get_rng_state()
    al.Trainer(al.TrainConfig(epochs=2, batch_size=8, seed=seed), transform=transform).fit(model, pools, cycle=1)
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG was neither read nor advanced
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_trainer_gives_transforms_a_seeded_generator() -> None:
    rec = _Recorder()
    torch.manual_seed(123)
    w1 = _fit(rec)
    assert len(rec.generators) == 48 and all(isinstance(g, torch.Generator) for g in rec.generators)
    assert len({id(g) for g in rec.generators}) == 1  # one stream for the whole fit
    # the same seed gives the same augmentations (hence weights) whatever the global RNG holds
    torch.manual_seed(999)
    assert torch.equal(_fit(_Recorder()), w1)
    assert not torch.equal(_fit(_Recorder(), seed=1), w1)


def test_trainer_still_calls_plain_transforms() -> None:
    seen: list[torch.Size] = []

    def plain(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.shape)
        return x

    _fit(plain)
    assert len(seen) == 48 and all(s == (16,) for s in seen)


def test_load_plugins_lives_with_the_registry_and_cli_reexports_it() -> None:
    from activelearn import cli
    from activelearn.strategies import registry

    assert cli.load_plugins is registry.load_plugins
    with pytest.raises(al.exceptions.InvalidParameterError, match="no such file"):
        registry.load_plugins(["/nonexistent/plugin.py"])
