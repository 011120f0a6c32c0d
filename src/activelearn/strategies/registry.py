"""A decorator registry of strategies: ``register``, ``available``, ``get``.

User subclasses register the same way as built-ins::

    @activelearn.strategies.register("my_method")
    class MyMethod(Strategy):
        ...

Registering a taken name warns and replaces the earlier class.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import importlib.util
import inspect
import sys
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from ..exceptions import InvalidParameterError, UnknownStrategyError
from .base import Strategy

__all__ = ["register", "available", "get", "get_class", "describe", "load_plugins", "plugin_reference"]

_REGISTRY: dict[str, type[Strategy]] = {}
#: builders for names that are not classes, e.g. "dacs+entropy" (name pattern -> factory)
_COMPOSERS: list[tuple[Callable[[str], bool], Callable[..., Strategy]]] = []

S = TypeVar("S", bound=type[Strategy])


def register(name: str | None = None) -> Callable[[S], S]:
    """Class decorator adding a :class:`Strategy` subclass to the registry under ``name``.

    The default name is the class name in lower case.  A clash warns and the
    new class replaces the old one.
    """

    def deco(cls: S) -> S:
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            raise InvalidParameterError(f"register() decorates Strategy subclasses, got {cls!r}")
        key = name or cls.__name__.lower()
        if "+" in key or not key:
            raise InvalidParameterError(f"strategy name must be non-empty and free of '+', got {key!r}")
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            warnings.warn(f"strategy name {key!r} was registered by {_REGISTRY[key].__qualname__}; replacing it with {cls.__qualname__}", stacklevel=2)
        cls.name = key
        _REGISTRY[key] = cls
        return cls

    return deco


def register_composer(matches: Callable[[str], bool], factory: Callable[..., Strategy]) -> None:
    """Teach :func:`get` to build composite names (e.g. ``"dacs+entropy"``)."""
    _COMPOSERS.append((matches, factory))


def available(pattern: str = "*") -> list[str]:
    """Sorted registered names matching a shell-style wildcard (``"*entropy*"``)."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def get_class(name: str) -> type[Strategy]:
    """The registered class, or an error listing close matches."""
    if not isinstance(name, str):
        raise InvalidParameterError(f"strategy name must be a str, got {name!r}")
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownStrategyError(f"unknown strategy {name!r}{hint} Available: {', '.join(available())}") from None


def get(name: str, **params: Any) -> Strategy:
    """Build a registered strategy with keyword parameters (unknown or ill-typed ones raise)."""
    for matches, factory in _COMPOSERS:
        if isinstance(name, str) and matches(name):
            return factory(name, **params)
    cls = get_class(name)
    sig = inspect.signature(cls.__init__)
    accepted = [p for p in sig.parameters if p != "self"]
    has_kwargs = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    unknown = sorted(set(params) - set(accepted))
    if unknown and not has_kwargs:
        raise InvalidParameterError(f"strategy {name!r} got unknown parameter(s) {unknown}; it accepts {accepted}")
    try:
        strategy = cls(**params)
    except TypeError as exc:
        raise InvalidParameterError(f"strategy {name!r}: {exc}") from exc
    strategy.validate_params()
    return strategy


def describe(name: str) -> str:
    """One line saying what a registered strategy does and what it needs from the model.

    Built from what the class declares, so it holds for user strategies too:
    the first line of its docstring, the model outputs in ``requires``, the
    extensions its default instance attaches, and ``needs_dropout``.
    """
    cls = get_class(name)
    doc = (inspect.getdoc(cls) or "").strip().splitlines()
    what = doc[0].rstrip(".").replace("``", "") if doc else cls.__name__
    needs = []
    outputs = sorted(cls.requires)
    if outputs:
        needs.append("outputs " + ", ".join(outputs))
    try:
        exts = [type(e).__name__ for e in cls().model_extensions()]
    except Exception:  # noqa: BLE001 - a class without defaults: describe what it declares
        exts = []
    if exts:
        needs.append("attaches " + ", ".join(exts))
    if getattr(cls, "needs_dropout", False):
        needs.append("a backbone with dropout")
    return f"{what} (needs: {'; '.join(needs) or 'nothing from the model'})"


def plugin_reference(plugin: str) -> str:
    """How a plugin is recorded in a run's recipe: a file as its absolute path, a module by its dotted name.

    An absolute path keeps a resumed run working from any working directory.
    """
    path = Path(plugin)
    if path.suffix == ".py" or path.exists():
        return str(path.resolve())
    return plugin


def _import_file(plugin: str, path: Path) -> None:
    if not path.is_file():
        raise InvalidParameterError(f"--plugin {plugin!r}: no such file (pass a .py file or an importable module name)")
    spec = importlib.util.spec_from_file_location(f"activelearn_plugin_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise InvalidParameterError(f"--plugin {plugin!r}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the plugin's own error, reported as bad input
        del sys.modules[spec.name]
        raise InvalidParameterError(f"--plugin {plugin!r} failed to import: {type(exc).__name__}: {exc}; fix the file") from exc


def _import_module(plugin: str) -> None:
    try:
        importlib.import_module(plugin)
    except ModuleNotFoundError as exc:
        raise InvalidParameterError(f"--plugin {plugin!r}: no such file or importable module ({exc}); pass a .py file or a module on sys.path") from exc
    except Exception as exc:  # the plugin's own error, reported as bad input
        raise InvalidParameterError(f"--plugin {plugin!r} failed to import: {type(exc).__name__}: {exc}; fix the module") from exc


def load_plugins(plugins: Sequence[str]) -> None:
    """Import user modules that register strategies, then every installed entry point.

    Importing a plugin **executes its code**, with the rights of the caller:
    pass only files you trust.  Nothing is imported on a checkpoint's say-so
    (:func:`activelearn.experiment.resume` imports the plugins its recipe names
    only with ``trust_plugins=True``).

    Parameters
    ----------
    plugins : sequence of str
        Each a ``.py`` file path (or any existing path) or a dotted module name
        (the ``activelearn run --plugin`` option passes its values here).
        Packages exposing the ``activelearn.strategies`` entry point are loaded too.

    Raises
    ------
    InvalidParameterError
        If a plugin that names a file does not exist, a module cannot be found,
        or the plugin's code fails while importing (syntax error, missing
        import, any exception); the message names the plugin and the error.
    """
    for plugin in plugins:
        path = Path(plugin)
        if path.suffix == ".py" or path.exists():
            _import_file(plugin, path)
        else:
            _import_module(plugin)
    for ep in metadata.entry_points(group="activelearn.strategies"):
        ep.load()
