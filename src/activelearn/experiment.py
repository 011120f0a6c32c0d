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

import numpy as np
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
from ._validation import check_nonnegative_int, check_positive_int
from .exceptions import CheckpointError, InvalidParameterError, UnknownStrategyError
from .file_oracle import FileOracle
from .oracle import Oracle, SimulatedOracle
from .outlock import output_lock
from .pools import Pools
from .strategies.base import Strategy
from .trainer import TrainConfig, Trainer

__all__ = ["make_loop", "run_experiment", "compare", "loop_from_recipe", "resume", "run_settings", "check_comparison", "parse_label"]

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


def loop_from_recipe(recipe: dict[str, Any], *, trust_plugins: bool = False, **overrides: Any) -> ActiveLoop:
    """Rebuild the loop a :attr:`ActiveLoop.recipe` describes (``overrides`` win).

    Plugins the recipe names (``activelearn run --plugin``) are **not**
    imported unless ``trust_plugins=True``: a recipe comes from a checkpoint
    file, and importing a plugin runs its code.  Import them yourself (or pass
    ``--plugin`` again on the command line) to resume a run whose strategy a
    plugin registers.  The rebuilt loop's recipe keeps naming them, so a run
    resumed once can be resumed again.

    Raises
    ------
    CheckpointError
        If ``recipe`` is not a loop recipe.
    UnknownStrategyError
        If the strategy is not registered; when the recipe names plugins that
        were not imported, the message says how to import them.
    """
    if not isinstance(recipe, dict) or "data" not in recipe or "strategy" not in recipe:
        raise CheckpointError(f"not a loop recipe: {recipe!r}")
    recipe = dict(recipe)
    plugins = list(recipe.pop("plugins", None) or [])
    if plugins and trust_plugins:
        from .strategies.registry import load_plugins

        load_plugins(plugins)
    kwargs = {k: _decode(v) for k, v in recipe.items()}
    kwargs.update(overrides)
    try:
        loop = make_loop(kwargs.pop("data"), kwargs.pop("strategy"), **kwargs)
    except UnknownStrategyError as exc:
        if not plugins or trust_plugins:
            raise
        raise UnknownStrategyError(
            f"{exc}. The checkpoint's recipe names the plugin(s) {plugins}, which were not imported because importing "
            "runs their code: name them again with --plugin (from Python: import them first), or pass --trust-plugins "
            "(trust_plugins=True) to import the files the checkpoint names"
        ) from None
    if plugins and loop.recipe is not None:
        loop.recipe["plugins"] = plugins
    return loop


def run_settings(recipe: dict[str, Any]) -> dict[str, Any]:
    """The settings a loop recipe runs with, the preset's values filled in where the recipe left them to it.

    Keys are the command line's (``dataset``, ``strategy``, ``seed``,
    ``budget``, ``cycles``, ``initial``, ``epochs``, ``backbone``,
    ``noise_rate``, ``param``, ``oracle``, ``oracle_dir``, ``oracle_timeout``,
    ``aux_head``, ``data_root``, ``device``): ``activelearn run --resume``
    compares the options it is given against them.
    """
    config = _decode(recipe.get("config")) or preset(recipe["data"])
    train = _decode(recipe.get("train")) or config.train
    data_kwargs = recipe.get("data_kwargs") or {}
    return {
        "dataset": recipe["data"],
        "strategy": recipe["strategy"],
        "seed": recipe.get("seed", 0),
        "budget": recipe.get("budget") or config.budget,
        "cycles": recipe.get("cycles") or config.cycles,
        "initial": config.initial if recipe.get("initial") is None else recipe["initial"],
        "epochs": train.epochs,
        "backbone": recipe.get("backbone") or config.backbone,
        "noise_rate": recipe.get("noise_rate", 0.0),
        "param": recipe.get("strategy_params") or {},
        "oracle": recipe.get("oracle", "simulated"),
        "oracle_dir": recipe.get("oracle_dir"),
        "oracle_timeout": recipe.get("oracle_timeout", 0.0),
        "aux_head": bool(recipe.get("aux_head", False)),
        "data_root": data_kwargs.get("root"),
        "device": recipe.get("device"),
    }


def _check_cycles(state: dict[str, Any], cycles: Any, out_dir: str | Path) -> int | None:
    """The new number of cycles a resumed run may take, or None to keep the saved one."""
    if cycles is None:
        return None
    cycles = check_positive_int("cycles", cycles)
    saved = int(state["identity"]["cycles"])
    done = len(state["history"]["records"])
    if cycles == saved:
        return None
    if cycles < saved:
        raise InvalidParameterError(f"the run in {out_dir} was started with {saved} cycles; resuming cannot lower it to {cycles}")
    if done >= saved:
        raise InvalidParameterError(
            f"the run in {out_dir} finished its {saved} cycles (the last one selects nothing), so it cannot be extended to "
            f"{cycles}; start a new run with --cycles {cycles}"
        )
    return cycles


def resume(out_dir: str | Path, *, trust_plugins: bool = False, state: dict[str, Any] | None = None, **overrides: Any) -> ActiveLoop:
    """Rebuild a checkpointed run from its saved recipe and load its state.

    ``resume(out_dir).run()`` finishes an interrupted run; ``overrides``
    replace recipe entries that are safe to change (``progress=False``,
    ``device="cpu"``).  ``cycles`` may be raised while the run has cycles left
    (the new cycles are recorded in the next checkpoint); a lower number, or
    more cycles for a run that finished (its last cycle selected nothing), is
    refused.  Plugins the recipe names are imported only with
    ``trust_plugins=True`` (see :func:`loop_from_recipe`).  ``state`` is the
    checkpoint already read with :func:`~activelearn.checkpoint.load_checkpoint`
    (default: read it from ``out_dir``).  Loops built by hand have no recipe:
    build them the same way again and call :meth:`ActiveLoop.restore`.

    Raises
    ------
    CheckpointError
        If ``out_dir`` holds no readable checkpoint or the checkpoint has no recipe.
    InvalidParameterError
        If ``cycles`` is lower than the saved number, or the run finished and
        ``cycles`` asks for more.
    """
    state = load_checkpoint(out_dir) if state is None else state
    recipe = state.get("recipe")
    if not recipe:
        raise CheckpointError(
            f"the checkpoint in {out_dir} has no recipe (the loop was built by hand); "
            "build the loop the same way and call loop.restore(out_dir)"
        )
    more = _check_cycles(state, overrides.pop("cycles", None), out_dir)
    loop = loop_from_recipe(recipe, trust_plugins=trust_plugins, out_dir=str(out_dir), **overrides)
    loop.restore(out_dir, state=state)
    if more is not None:
        loop.cycles = more
        loop.history.meta["cycles"] = more
        if loop.recipe is not None:
            loop.recipe["cycles"] = more
    return loop


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
    _check_sizes(initial, budget, cycles)
    bundle, config = _data_and_config(data, config, data_kwargs)
    train = _training_config(train, config, bundle, seed)
    net, backbone_label = _network(backbone, config, strategy, bundle, seed)
    model = ALModel(net, num_classes=bundle.num_classes, task=bundle.task, device=device, seed=seed, progress=progress)
    for ext in [*extensions, *_aux_head(aux_head)]:
        model.attach(ext)
    num_classes = bundle.num_classes if bundle.task == "classification" else None
    pools = Pools(bundle.train_x, task=bundle.task, num_classes=num_classes)
    loop = ActiveLoop(
        model,
        _strategy(strategy, seed, strategy_params),
        _oracle(oracle, bundle, noise_rate=noise_rate, seed=seed, out_dir=out_dir, oracle_dir=oracle_dir, timeout=oracle_timeout),
        pools,
        test=(bundle.test_x, bundle.test_y),
        trainer=Trainer(train, transform=bundle.train_transform, progress=progress),
        budget=config.budget if budget is None else budget,
        cycles=config.cycles if cycles is None else cycles,
        initial=config.initial if initial is None else initial,
        seed=seed,
        progress=progress,
        out_dir=out_dir,
        deterministic=deterministic,
        mode=mode,
    )
    loop.recipe = recipe
    loop.history.meta.update({"dataset": bundle.name, "backbone": backbone_label, "noise_rate": noise_rate})
    return loop


def _check_sizes(initial: Any, budget: Any, cycles: Any) -> None:
    """Refuse zero or negative sizes up front (``None`` means the preset's value)."""
    if budget is not None:
        check_positive_int("budget", budget)
    if cycles is not None:
        check_positive_int("cycles", cycles)
    if initial is not None and not isinstance(initial, (list, tuple, np.ndarray)):
        check_nonnegative_int("initial", initial)


def _data_and_config(data: str | DatasetBundle, config: ExperimentConfig | None, data_kwargs: dict[str, Any] | None) -> tuple[DatasetBundle, ExperimentConfig]:
    """The dataset (loaded by name, or the bundle given) and the protocol it runs under."""
    if isinstance(data, str):
        config = config or preset(data)
        return datasets.load(data, **{**config.dataset_kwargs, **(data_kwargs or {})}), config
    if not isinstance(data, DatasetBundle):
        raise InvalidParameterError(
            f"data must be a dataset name ({', '.join(datasets.available())}) or a DatasetBundle, got {type(data).__name__}; "
            "for your own torch Dataset build the parts yourself: Pools(dataset), an oracle over its targets, ActiveLoop(...) "
            "(see the getting-started page), or wrap tensors in DatasetBundle(train_x=..., train_y=..., ...)"
        )
    return data, config or (preset(data.name) if data.name in datasets.available() else preset("digits"))


def _training_config(train: TrainConfig | None, config: ExperimentConfig, bundle: DatasetBundle, seed: int) -> TrainConfig:
    """The training schedule (and loss) of one run: ``train`` or the preset's, seeded by ``seed``."""
    return replace(train if train is not None else config.train, seed=seed)  # each seed seeds the training too


def _network(backbone: str | torch.nn.Module | Callable[[], torch.nn.Module] | None, config: ExperimentConfig, strategy: str | Strategy, bundle: DatasetBundle, seed: int) -> tuple[torch.nn.Module, str]:
    """The run's fresh network and the label the history records for it."""
    if backbone is None or isinstance(backbone, str):
        name = _with_dropout_if_needed(backbone or config.backbone, strategy)
        return _build_net(name, bundle, seed), name
    net = _build_net(backbone, bundle, seed)
    return net, type(net).__name__


def _aux_head(wanted: bool) -> list[ModelExtension]:
    """A default DACS auxiliary head when ``aux_head=True``."""
    if not wanted:
        return []
    from .extensions import AuxiliaryHead

    return [AuxiliaryHead()]


def _oracle(oracle: str | Oracle, bundle: DatasetBundle, *, noise_rate: float, seed: int, out_dir: str | Path | None, oracle_dir: str | Path | None, timeout: float) -> Oracle:
    """The oracle a ``make_loop`` call names: the dataset's labels, a person through files, or the instance given."""
    num_classes = bundle.num_classes if bundle.task == "classification" else None
    if oracle == "simulated":
        return SimulatedOracle(bundle.train_y, num_classes=num_classes, noise_rate=noise_rate, in_task=bundle.meta.get("in_task"), seed=seed)
    if oracle == "file":
        folder = oracle_dir if oracle_dir is not None else (Path(out_dir) / "oracle" if out_dir is not None else None)
        if folder is None:
            raise InvalidParameterError("oracle='file' needs oracle_dir= (or out_dir=, which then holds an oracle/ folder)")
        return FileOracle(folder, num_classes=num_classes, timeout=timeout, inputs=bundle.train_x, image_shape=_image_shape(bundle))
    if isinstance(oracle, str):
        raise InvalidParameterError(f"oracle must be 'simulated', 'file' or an Oracle instance, got {oracle!r}")
    return oracle


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
    from the same weights; ``seed`` also seeds the training of each run.  Run
    ``name`` of ``seed`` writes to ``out_dir/name/seed<seed>``; ``out_dir`` is
    locked for the whole comparison (:func:`activelearn.outlock.output_lock`).

    Raises
    ------
    InvalidParameterError
        If a strategy name or seed is repeated (two runs would share a folder),
        or a name or parameter is invalid; nothing has run.
    OutputLockedError
        If another process or thread is writing to ``out_dir``.
    """
    check_comparison(strategy_names, seeds, kwargs.get("strategy_params"))
    if isinstance(data, str):
        config = kwargs.pop("config", None) or preset(data)
        data = datasets.load(data, **{**config.dataset_kwargs, **kwargs.pop("data_kwargs", {})})
        kwargs["config"] = config
    runs: dict[str, list[History]] = {}
    with output_lock(out_dir):
        for name in strategy_names:
            for seed in seeds:
                sub = Path(out_dir) / name / f"seed{seed}" if out_dir is not None else None
                runs.setdefault(name, []).append(run_experiment(data, name, seed=seed, out_dir=sub, **kwargs))
    return runs


def check_comparison(strategy_names: Sequence[str], seeds: Sequence[int], strategy_params: dict[str, Any] | None = None) -> None:
    """What :func:`compare` checks before anything runs: names and seeds unique, every strategy buildable.

    Raises
    ------
    InvalidParameterError, UnknownStrategyError
        On a repeated or unknown name, a repeated seed, or a bad parameter.
    """
    _check_unique("strategy names", strategy_names)
    _check_unique("seeds", seeds)
    for name in strategy_names:
        _strategy(name, 0, strategy_params)


def _check_unique(what: str, values: Sequence[Any]) -> None:
    if isinstance(values, str):
        raise InvalidParameterError(f"{what} must be a sequence, got the string {values!r}; pass a list")
    repeated = sorted({str(v) for v in values if list(values).count(v) > 1})
    if repeated:
        raise InvalidParameterError(f"{what} must not repeat (two runs would write to one folder), got {list(values)!r}: {repeated} repeated")
    if not len(values):
        raise InvalidParameterError(f"{what} must not be empty")
