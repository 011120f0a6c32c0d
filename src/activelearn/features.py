"""Feature capture: the penultimate embedding and the stage outputs of any backbone, read by forward hooks.

The backbone convention of :class:`~activelearn.model.ALModel`: ``head`` is the
final linear layer, whose *input* is the embedding; ``stages`` are modules whose
outputs are intermediate features.  :class:`FeatureTap` registers one forward
pre-hook on the head and one forward hook per stage, so any ``nn.Module`` works
without a special ``forward``.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import torch
from torch import nn

from .exceptions import InvalidParameterError

__all__ = ["FeatureTap", "last_linear_name"]


def last_linear_name(module: nn.Module) -> str:
    """Name (as in ``named_modules()``) of the last ``nn.Linear`` of ``module``, the default head."""
    names = [n for n, m in module.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise InvalidParameterError(f"{type(module).__name__} has no nn.Linear; pass head='<name of the final layer>'")
    return names[-1]


class FeatureTap:
    """Hooks on a backbone capturing its embedding (input of ``head``) and its stage outputs.

    Parameters
    ----------
    backbone : nn.Module
    head : str, optional
        Name of the final linear layer.  Default: ``backbone.head`` if present,
        else the last ``nn.Linear``.
    stages : sequence of str, optional
        Names of the stage modules.  Default: ``backbone.stage_names`` if
        present, else none.

    Raises
    ------
    InvalidParameterError
        If ``head`` or a stage is not a submodule of ``backbone``.
    """

    def __init__(self, backbone: nn.Module, head: str | None = None, stages: Sequence[str] | None = None) -> None:
        modules = dict(backbone.named_modules())
        if head is None:
            head = next((n for n, m in modules.items() if m is getattr(backbone, "head", None)), None) or last_linear_name(backbone)
        if head not in modules:
            raise InvalidParameterError(f"head {head!r} is not a submodule of {type(backbone).__name__}; pick one of {list(modules)[:12]}...")
        self.head_name: str = head
        self.stage_names: tuple[str, ...] = tuple(stages if stages is not None else getattr(backbone, "stage_names", ()))
        for s in self.stage_names:
            if s not in modules:
                raise InvalidParameterError(f"stage {s!r} is not a submodule of {type(backbone).__name__}")
        self._captured: dict[str, torch.Tensor] = {}
        self._shapes: tuple[int, list[tuple[int, ...]]] | None = None
        modules[head].register_forward_pre_hook(self._capture_embedding)
        for i, s in enumerate(self.stage_names):
            modules[s].register_forward_hook(functools.partial(self._capture_stage, i))

    def _capture_embedding(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self._captured["embeddings"] = args[0]

    def _capture_stage(self, i: int, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
        self._captured[f"stage{i}"] = output

    def run(self, backbone: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """One pass of ``backbone``: its outputs, the flattened embedding and the raw stage outputs."""
        self._captured = {}
        logits = backbone(x)
        emb = self._captured["embeddings"].flatten(1)
        stages = [self._captured[f"stage{i}"] for i in range(len(self.stage_names))]
        self._captured = {}
        return logits, emb, stages

    def shapes(self, model: nn.Module, example: torch.Tensor, device: torch.device) -> tuple[int, list[tuple[int, ...]]]:
        """Embedding size and per-sample stage shapes, from one evaluation pass of ``model`` on two examples (once)."""
        if self._shapes is None:
            was_training = model.training
            model.eval()
            with torch.no_grad():
                out = model.forward(example[:2].to(device))
            model.train(was_training)
            self._shapes = (int(out.embeddings.shape[1]), [tuple(s.shape[1:]) for s in out.stages])
        return self._shapes
