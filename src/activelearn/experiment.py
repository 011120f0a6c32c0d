"""One-call experiments: build the data, model, oracle and loop from names.

>>> from activelearn.experiment import run_experiment
>>> history = run_experiment("digits", "entropy", seed=0)   # doctest: +SKIP
"""

from __future__ import annotations

import ast
import copy
import inspect
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from . import datasets, strategies
from .backbones import build_backbone
from .configs import ExperimentConfig, preset
from .datasets import DatasetBundle
from .history import History
from . import loop as loop_module
from .checkpoint import load_checkpoint
from .loop import ActiveLoop
from .model import ALModel, ModelExtension
from .exceptions import CheckpointError, InvalidParameterError
from .file_oracle import FileOracle
from .oracle import Oracle, SimulatedOracle
from .pools import Pools
from .strategies.base import Strategy
from .trainer import TrainConfig, Trainer

__all__ = ["make_loop", "run_experiment", "compare", "loop_from_recipe", "resume", "parse_label"]

_PLAIN = (int, float, str, bool, type(None))


def parse_label(label: str) -> tuple[str, dict[str, Any]]:
    """Split a strategy label with parameters into its name and keyword arguments.

    ``"ncenet:distance=cosine:prototypes=2"`` gives ``("ncenet", {"distance": "cosine",
    "prototypes": 2})``; values are Python literals where they parse as one, else strings.
    Labels let scripts run variants of one strategy side by side
    (``"dacs,dacs:cross_group=True"``).
    """
    name, *items = label.split(":")
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InvalidParameterError(f"strategy label parameters are key=value after ':', got {item!r} in {label!r}")
        try:
            params[key.strip()] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            params[key.strip()] = raw
    return name.strip(), params


def _is_plain(obj: Any) -> bool:
    if isinstance(obj, _PLAIN):
        return True
    if isinstance(obj, (list, tuple)):
        return all(_is_plain(v) for v in obj)
    if isinstance(obj, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in obj.items())
    return False


def _recipe(data: Any, strategy: Any, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """Plain data from which :func:`loop_from_recipe` rebuilds the loop, or None when
    something was passed as an object (a bundle, a module, a strategy instance)."""
    if not isinstance(data, str) or not isinstance(strategy, str) or kwargs.get("extensions"):
        return None
    out: dict[str, Any] = {"data": data, "strategy": strategy}
    for key, value in kwargs.items():
        if key in ("extensions", "out_dir"):
            continue
        if isinstance(value, TrainConfig):
            value = {"__train_config__": asdict(value)}
        elif isinstance(value, ExperimentConfig):
            value = {"__experiment_config__": {**asdict(value), "train": asdict(value.train)}}
        elif isinstance(value, Path):
            value = str(value)
        if not _is_plain(value):
            return None
        out[key] = value
    return out


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "__train_config__" in value:
        return TrainConfig(**value["__train_config__"])
    if isinstance(value, dict) and "__experiment_config__" in value:
        fields_ = dict(value["__experiment_config__"])
        fields_["train"] = TrainConfig(**fields_["train"])
        return ExperimentConfig(**fields_)
    return value


def _image_shape(bundle: DatasetBundle) -> tuple[int, ...] | None:
    """How to draw one input for a person: the bundle's own shape, or a square for flat images (digits' 64 -> 8 x 8)."""
    if "image_shape" in bundle.meta:
        return tuple(bundle.meta["image_shape"])
    if len(bundle.input_shape) == 1:
        side = round(bundle.input_shape[0] ** 0.5)
        if side * side == bundle.input_shape[0] and side >= 8:
            return (side, side)
    return None


def loop_from_recipe(recipe: dict[str, Any], **overrides: Any) -> ActiveLoop:
    """Rebuild the loop a :attr:`ActiveLoop.recipe` describes (``overrides`` win).

    Plugins named in the recipe (``activelearn run --plugin``) are imported first.
    """
    if not isinstance(recipe, dict) or "data" not in recipe or "strategy" not in recipe:
        raise CheckpointError(f"not a loop recipe: {recipe!r}")
    recipe = dict(recipe)
    plugins = recipe.pop("plugins", None) or []
    if plugins:
        from .strategies.registry import load_plugins

        load_plugins(plugins)
    kwargs = {k: _decode(v) for k, v in recipe.items()}
    kwargs.update(overrides)
    return make_loop(kwargs.pop("data"), kwargs.pop("strategy"), **kwargs)


def resume(out_dir: str | Path, **overrides: Any) -> ActiveLoop:
    """Rebuild a checkpointed run from its saved recipe and load its state.

    ``resume(out_dir).run()`` finishes an interrupted run; ``overrides``
    replace recipe entries (e.g. ``progress=False``, ``device="cpu"``).  Loops
    built by hand have no recipe: build them the same way again and call
    :meth:`ActiveLoop.restore`.

    Raises
    ------
    CheckpointError
        If ``out_dir`` holds no readable checkpoint or the checkpoint has no recipe.
    """
    state = load_checkpoint(out_dir)
    recipe = state.get("recipe")
    if not recipe:
        raise CheckpointError(
            f"the checkpoint in {out_dir} has no recipe (the loop was built by hand); "
            "build the loop the same way and call loop.restore(out_dir)"
        )
    loop = loop_from_recipe(recipe, out_dir=str(out_dir), **overrides)
    return loop.restore(out_dir, state=state)


loop_module.set_resume_builder(resume)  # keeps the deprecated ActiveLoop.resume working


def _strategy(strategy: str | Strategy, seed: int, params: dict[str, Any] | None) -> Strategy:
    if isinstance(strategy, Strategy):
        return strategy
    params = dict(params or {})
    cls_params: Sequence[str] = ()
    try:
        cls_params = list(inspect.signature(strategies.get_class(strategy).__init__).parameters)
    except Exception:  # noqa: BLE001 - composite names: let get() decide
        cls_params = ("seed",)
    if "seed" in cls_params:
        params.setdefault("seed", seed)
    return strategies.get(strategy, **params)


def _with_dropout_if_needed(name: str, strategy: str | Strategy) -> str:
    """``name`` plus ``:dropout=0.5`` when the strategy needs MC dropout and the name sets none.

    Dropout has no weights, so the initial weights stay those every other strategy of the seed gets.
    """
    cls: Any = None
    if isinstance(strategy, Strategy):
        cls = type(strategy)
    elif "+" not in strategy:
        cls = strategies.get_class(parse_label(strategy)[0])
    if getattr(cls, "needs_dropout", False) and "dropout=" not in name:
        return f"{name}:dropout=0.5"
    return name


def _build_net(backbone: str | Callable[[], torch.nn.Module] | torch.nn.Module, bundle: DatasetBundle, seed: int) -> torch.nn.Module:
    """A fresh network for one run: a deep copy of a module, a factory's product or a named backbone, built under ``seed``."""
    if isinstance(backbone, torch.nn.Module):
        return copy.deepcopy(backbone)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if isinstance(backbone, str):
            return build_backbone(backbone, input_shape=bundle.input_shape, num_classes=bundle.num_classes)
        net = backbone()
    if not isinstance(net, torch.nn.Module):
        raise InvalidParameterError(f"the backbone factory must return a torch.nn.Module, got {type(net).__name__}")
    return net


def make_loop(
    data: str | DatasetBundle,
    strategy: str | Strategy,
    *,
    initial: int | None = None,
    budget: int | None = None,
    cycles: int | None = None,
    seed: int = 0,
    backbone: str | torch.nn.Module | Callable[[], torch.nn.Module] | None = None,
    train: TrainConfig | None = None,
    config: ExperimentConfig | None = None,
    device: str | None = None,
    noise_rate: float = 0.0,
    strategy_params: dict[str, Any] | None = None,
    data_kwargs: dict[str, Any] | None = None,
    extensions: Sequence[ModelExtension] = (),
    aux_head: bool = False,
    progress: bool = True,
    out_dir: str | Path | None = None,
    oracle: str | Oracle = "simulated",
    oracle_dir: str | Path | None = None,
    oracle_timeout: float = 0.0,
    deterministic: bool | None = None,
    mode: str = "interactions",
) -> ActiveLoop:
    """Assemble a ready-to-run :class:`ActiveLoop` (the same seed gives the same
    initial set and initial weights for every strategy).

    ``backbone`` is a registered name (``"mlp"``, ``"mlp:dropout=0.5"``), a
    factory (a callable with no arguments returning a fresh module, called under
    ``torch.manual_seed(seed)``), or a module: a module is deep-copied, so its
    weights at this call are the initial weights of the run and the module you
    passed is never trained (a comparison can pass one module to every run).  A
    strategy that needs MC dropout (``bald``, ``batchbald``) gets ``:dropout=0.5``
    added to a backbone name that sets no dropout.  ``seed`` seeds everything:
    the initial set, a named or factory backbone, the strategy, the oracle's
    noise, and the training (``train.seed`` is replaced by ``seed``).

    ``extensions`` are attached to the model whatever the strategy (e.g. the
    DACS auxiliary head, which the paper trains with every baseline);
    ``aux_head=True`` is a shortcut adding a default
    :class:`~activelearn.extensions.AuxiliaryHead`.

    ``oracle`` is ``"simulated"`` (the dataset's labels, with ``noise_rate``),
    ``"file"`` (a :class:`~activelearn.file_oracle.FileOracle` in
    ``oracle_dir``, default ``<out_dir>/oracle``, waiting ``oracle_timeout``
    seconds for each answers file), or any Oracle instance.  When every
    argument is plain data the loop gets a ``recipe`` and its checkpoints can be
    resumed with :meth:`ActiveLoop.resume`.

    A bundle whose ``meta["in_task"]`` holds a per-sample mask (e.g.
    ``mix_mnist``) gets an open-set oracle that answers "not in task" for the
    others; ``mode="quota"`` makes ``budget`` count in-task labels per cycle
    (see :class:`~activelearn.loop.ActiveLoop`)."""
    recipe = _recipe(data, strategy, {k: v for k, v in locals().items() if k not in ("data", "strategy", "oracle") or (k == "oracle" and isinstance(v, str))})
    if isinstance(data, str):
        config = config or preset(data)
        bundle = datasets.load(data, **{**config.dataset_kwargs, **(data_kwargs or {})})
    else:
        bundle = data
        config = config or (preset(bundle.name) if bundle.name in datasets.available() else preset("digits"))
    train = replace(train if train is not None else config.train, seed=seed)  # each seed seeds the training too
    backbone_name: str | None = None
    if backbone is None or isinstance(backbone, str):
        backbone_name = _with_dropout_if_needed(backbone or config.backbone, strategy)
        net = _build_net(backbone_name, bundle, seed)
    else:
        net = _build_net(backbone, bundle, seed)
    model = ALModel(net, num_classes=bundle.num_classes, task=bundle.task, device=device, seed=seed, progress=progress)
    if aux_head:
        from .extensions import AuxiliaryHead

        extensions = [*extensions, AuxiliaryHead()]
    for ext in extensions:
        model.attach(ext)
    pools = Pools(bundle.train_x, task=bundle.task, num_classes=bundle.num_classes if bundle.task == "classification" else None)
    num_classes = bundle.num_classes if bundle.task == "classification" else None
    if oracle == "simulated":
        oracle = SimulatedOracle(bundle.train_y, num_classes=num_classes, noise_rate=noise_rate, in_task=bundle.meta.get("in_task"), seed=seed)
    elif oracle == "file":
        folder = oracle_dir if oracle_dir is not None else (Path(out_dir) / "oracle" if out_dir is not None else None)
        if folder is None:
            raise InvalidParameterError("oracle='file' needs oracle_dir= (or out_dir=, which then holds an oracle/ folder)")
        oracle = FileOracle(folder, num_classes=num_classes, timeout=oracle_timeout, inputs=bundle.train_x, image_shape=_image_shape(bundle))
    elif isinstance(oracle, str):
        raise InvalidParameterError(f"oracle must be 'simulated', 'file' or an Oracle instance, got {oracle!r}")
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
        deterministic=deterministic,
        mode=mode,
    )
    loop.recipe = recipe
    loop.history.meta.update({"dataset": bundle.name, "backbone": backbone_name or type(net).__name__, "noise_rate": noise_rate})
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
    """Run several strategies with the same seeds (hence initial sets and initial weights).

    Every strategy name is checked before the first run starts.  Each run builds
    its own network from ``backbone`` (see :func:`make_loop`: a module is
    deep-copied, never trained in place), so every strategy of a seed starts
    from the same weights; ``seed`` also seeds the training of each run.
    """
    if isinstance(data, str):
        config = kwargs.pop("config", None) or preset(data)
        data = datasets.load(data, **{**config.dataset_kwargs, **kwargs.pop("data_kwargs", {})})
        kwargs["config"] = config
    for name in strategy_names:  # every name and parameter checked before the first run writes anything
        _strategy(name, 0, kwargs.get("strategy_params"))
    runs: dict[str, list[History]] = {}
    for name in strategy_names:
        for seed in seeds:
            sub = Path(out_dir) / name / f"seed{seed}" if out_dir is not None else None
            runs.setdefault(name, []).append(run_experiment(data, name, seed=seed, out_dir=sub, **kwargs))
    return runs
