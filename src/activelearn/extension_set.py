"""The extensions attached to a model: attaching, the head replacement, lazy building and initial weights.

:class:`ExtensionSet` manages the ``nn.ModuleDict`` of an
:class:`~activelearn.model.ALModel` (the dict stays registered on the model, so
the extensions' weights are part of ``model.state_dict()``).  Extensions are
built once the backbone's feature sizes are known, each inside a forked RNG
seeded from the model's seed and the number of extensions built before it
(``seed + 7919 * (built + 1)``), so building never touches the global RNG and
gives the same weights on resume.  The weights each had when built are kept for
``reset_parameters`` and for checkpoints.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from .exceptions import InvalidParameterError
from .extension_point import BuildContext, ModelExtension

__all__ = ["ExtensionSet"]


class ExtensionSet:
    """Attach, build and reset the extensions held in ``modules``.

    Parameters
    ----------
    modules : nn.ModuleDict
        The model's extensions, by name (shared with the model, not copied).
    seed : int
        Seeds each extension's initialisation.
    """

    def __init__(self, modules: nn.ModuleDict, seed: int) -> None:
        self.modules = modules
        self.seed = int(seed)
        self.built: set[str] = set()
        self.initial: dict[str, dict[str, torch.Tensor]] = {}

    @property
    def head(self) -> ModelExtension | None:
        """The attached extension that replaces the head, if any."""
        return next((e for e in self.modules.values() if e.replaces_head), None)  # type: ignore[return-value]

    def attach(self, extension: ModelExtension) -> tuple[ModelExtension, bool]:
        """Add ``extension`` unless its name is taken; returns the attached instance and whether it is new."""
        if not isinstance(extension, ModelExtension):
            raise InvalidParameterError(f"attach() needs a ModelExtension, got {type(extension).__name__}")
        if extension.name in self.modules:
            return self.modules[extension.name], False  # type: ignore[return-value]
        head = self.head
        if extension.replaces_head and head is not None:
            raise InvalidParameterError(f"extension {extension.name!r} replaces the head but {head.name!r} already does")
        self.modules[extension.name] = extension
        return extension, True

    def provides(self) -> set[str]:
        """Every output name the extensions serve."""
        return {n for ext in self.modules.values() for n in ext.provides}  # type: ignore[union-attr]

    def unbuilt(self) -> list[str]:
        """Names of the attached extensions not built yet, in attachment order."""
        return [n for n in self.modules if n not in self.built]

    def build(self, ctx: BuildContext, device: torch.device) -> None:
        """Build every unbuilt extension from ``ctx`` (seeded, inside a forked RNG) and keep its initial weights."""
        for name in self.unbuilt():
            ext = self.modules[name]
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed + 7919 * (len(self.built) + 1))
                ext.build_from(ctx)  # type: ignore[operator]
            ext.to(device)
            self.initial[name] = copy.deepcopy({k: v.detach().cpu() for k, v in ext.state_dict().items()})
            self.built.add(name)

    def reset(self) -> None:
        """Restore every built extension's initial weights."""
        for name, state in self.initial.items():
            self.modules[name].load_state_dict(state)

    def state(self) -> dict[str, Any]:
        """The initial weights of each built extension and the built names (plain data)."""
        return {"extensions_initial": {n: {k: v.clone() for k, v in s.items()} for n, s in self.initial.items()}, "built": sorted(self.built)}

    def load_initial(self, initial: dict[str, dict[str, torch.Tensor]]) -> None:
        """Take saved initial weights (what :meth:`reset` restores)."""
        self.initial = {n: {k: v.clone() for k, v in s.items()} for n, s in initial.items()}
