"""One-call experiments: build the data, model, oracle and loop from names.

>>> from activelearn.experiment import run_experiment
>>> history = run_experiment("digits", "entropy", seed=0)   # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import torch

from . import datasets, strategies
from .backbones import build_backbone
from .configs import ExperimentConfig, preset
from .datasets import DatasetBundle
from .history import History
from .loop import ActiveLoop
from .model import ALModel, ModelExtension
from .oracle import SimulatedOracle
from .pools import Pools
from .strategies.base import Strategy
from .trainer import TrainConfig, Trainer

__all__ = ["make_loop", "run_experiment", "compare"]


def _strategy(strategy: str | Strategy, seed: int, params: dict[str, Any] | None) -> Strategy:
    if isinstance(strategy, Strategy):
        return strategy
    params = dict(params or {})
    cls_params: Sequence[str] = ()
    try:
        cls_params = list(inspect.signature(strategies.get_class(strategy).__init__).parameters)
    except Exception:  # composite names: let get() decide
        cls_params = ("seed",)
    if "seed" in cls_params:
        params.setdefault("seed", seed)
    return strategies.get(strategy, **params)


def make_loop(
    data: str | DatasetBundle,
    strategy: str | Strategy,
    *,
    initial: int | None = None,
    budget: int | None = None,
    cycles: int | None = None,
    seed: int = 0,
    backbone: str | torch.nn.Module | None = None,
    train: TrainConfig | None = None,
    config: ExperimentConfig | None = None,
    device: str | None = None,
    noise_rate: float = 0.0,
    strategy_params: dict[str, Any] | None = None,
    data_kwargs: dict[str, Any] | None = None,
    extensions: Sequence[ModelExtension] = (),
    progress: bool = True,
    out_dir: str | Path | None = None,
    mode: str = "interactions",
) -> ActiveLoop:
    """Assemble a ready-to-run :class:`ActiveLoop` (the same seed gives the same
    initial set and initial weights for every strategy).

    ``extensions`` are attached to the model whatever the strategy (e.g. the
    DACS auxiliary head, which the paper trains with every baseline).

    A bundle whose ``meta["in_task"]`` holds a per-sample mask (e.g.
    ``mix_mnist``) gets an open-set oracle that answers "not in task" for the
    others; ``mode="quota"`` makes ``budget`` count in-task labels per cycle
    (see :class:`~activelearn.loop.ActiveLoop`)."""
    if isinstance(data, str):
        config = config or preset(data)
        bundle = datasets.load(data, **{**config.dataset_kwargs, **(data_kwargs or {})})
    else:
        bundle = data
        config = config or (preset(bundle.name) if bundle.name in datasets.available() else preset("digits"))
    train = train or replace(config.train, seed=seed)
    if isinstance(backbone, torch.nn.Module):
        net = backbone
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = build_backbone(backbone or config.backbone, input_shape=bundle.input_shape, num_classes=bundle.num_classes)
    model = ALModel(net, num_classes=bundle.num_classes, task=bundle.task, device=device, seed=seed, progress=progress)
    for ext in extensions:
        model.attach(ext)
    pools = Pools(bundle.train_x, task=bundle.task, num_classes=bundle.num_classes if bundle.task == "classification" else None)
    oracle = SimulatedOracle(bundle.train_y, num_classes=bundle.num_classes if bundle.task == "classification" else None, noise_rate=noise_rate, in_task=bundle.meta.get("in_task"), seed=seed)
    loop = ActiveLoop(
        model,
        _strategy(strategy, seed, strategy_params),
        oracle,
        pools,
        test=(bundle.test_x, bundle.test_y),
        trainer=Trainer(train, transform=bundle.train_transform, progress=progress),
        budget=budget or config.budget,
        cycles=cycles or config.cycles,
        initial=config.initial if initial is None else initial,
        seed=seed,
        progress=progress,
        out_dir=out_dir,
        mode=mode,
    )
    loop.history.meta.update({"dataset": bundle.name, "backbone": backbone if isinstance(backbone, str) else config.backbone, "noise_rate": noise_rate})
    return loop


def run_experiment(data: str | DatasetBundle, strategy: str | Strategy, **kwargs: Any) -> History:
    """Build with :func:`make_loop` and run; returns the History."""
    return make_loop(data, strategy, **kwargs).run()


def compare(
    data: str | DatasetBundle,
    strategy_names: Sequence[str],
    *,
    seeds: Sequence[int] = (0,),
    out_dir: str | Path | None = None,
    **kwargs: Any,
) -> dict[str, list[History]]:
    """Run several strategies with the same seeds (hence initial sets and initial weights)."""
    if isinstance(data, str):
        config = kwargs.pop("config", None) or preset(data)
        data = datasets.load(data, **{**config.dataset_kwargs, **kwargs.pop("data_kwargs", {})})
        kwargs["config"] = config
    runs: dict[str, list[History]] = {}
    for name in strategy_names:
        for seed in seeds:
            sub = Path(out_dir) / name / f"seed{seed}" if out_dir is not None else None
            runs.setdefault(name, []).append(run_experiment(data, name, seed=seed, out_dir=sub, **kwargs))
    return runs
