"""Seeded, consistent MC-dropout inference (Gal & Ghahramani 2016; Kirsch et al. 2019).

Monte Carlo dropout draws ``S`` stochastic forward passes of a network trained
with dropout; each pass is a sample ``w_s`` of an approximate posterior.  BALD
scores one point at a time, so independent masks per input would do; BatchBALD
estimates the *joint* predictive of several points under the same ``w_s``, so
the masks must be the same for every input of a pass ("consistent MC dropout",
as in ``batchbald_redux.consistent_mc_dropout``).  We always draw consistent
masks:

* every ``nn.Dropout`` / ``Dropout1d/2d/3d`` layer with ``p > 0`` in the model
  (backbone and extensions) gets, for sample ``s``, one mask over the
  per-sample feature shape (element-wise for ``nn.Dropout``, per channel for
  the ``Nd`` variants), drawn from a ``torch.Generator`` seeded by
  ``(seed, s, layer number)`` and kept for all inputs;
* the model otherwise runs in evaluation mode, so batch-norm uses its running
  statistics and the layers' own dropout is off (the masks are applied by
  forward hooks instead).

The masks therefore depend only on ``(seed, sample, layer)``, not on the
batch size or on how the caller chunks the indices, so neither do the outputs
beyond float rounding (a forward pass over another batch size may round
differently with several BLAS threads: ~1e-7 here), and the global RNG is never
used (the passes also run inside ``torch.random.fork_rng`` so that a layer
drawing from it could not change it either).

This module does not import :mod:`activelearn.model` (which imports it), so
the model is typed ``Any`` here: it is an :class:`activelearn.ALModel`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._validation import check_positive_int
from .exceptions import InvalidParameterError

__all__ = ["dropout_layers", "require_dropout", "ConsistentMasks", "mc_outputs"]

_DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)


def dropout_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The dropout layers (``p > 0``) MC dropout samples, in ``named_modules`` order."""
    return [(n, m) for n, m in module.named_modules() if type(m) in _DROPOUTS and float(m.p) > 0.0]


def require_dropout(model: nn.Module, who: str = "MC dropout") -> None:
    """Raise the library's error, saying how to fix it, when ``model`` has no dropout layer."""
    if not dropout_layers(model):
        backbone = getattr(model, "backbone", model)
        raise InvalidParameterError(
            f"{who} needs dropout layers in the model, but {type(backbone).__name__} has none (or all have p=0); "
            "build the backbone with dropout, e.g. build_backbone('mlp', input_shape=..., num_classes=..., dropout=0.5), "
            "MLP(..., dropout=0.5) or SmallCNN(..., dropout=0.5), or add torch.nn.Dropout layers to your own backbone"
        )


class ConsistentMasks:
    """Context manager installing consistent dropout masks on a model's dropout layers.

    Parameters
    ----------
    model : nn.Module
        The model (its dropout layers are found with :func:`dropout_layers`).
    seed : int
        Seeds every mask: layer ``j`` of sample ``s`` uses a generator seeded
        from ``(seed, s, j)``.

    Set :attr:`sample` before each forward pass.  Masks are drawn on first use
    per (layer, sample, feature shape) and reused.
    """

    def __init__(self, model: nn.Module, seed: int) -> None:
        self.layers = [m for _, m in dropout_layers(model)]
        self.seed = int(seed)
        self.sample = 0
        self._masks: dict[tuple[int, int, tuple[int, ...]], torch.Tensor] = {}
        self._handles: list[Any] = []

    def _mask(self, j: int, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        shape = tuple(x.shape[1:]) if type(layer) is nn.Dropout else (x.shape[1],) + (1,) * (x.ndim - 2)
        key = (j, self.sample, shape)
        mask = self._masks.get(key)
        if mask is None:
            state = np.random.SeedSequence([self.seed % 2**63, self.sample, j]).generate_state(2, dtype=np.uint32)
            gen = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
            p = float(layer.p)  # type: ignore[arg-type]
            keep = torch.rand(shape, generator=gen) >= p
            mask = (keep.to(torch.float32) / (1.0 - p)).to(x.device)
            self._masks[key] = mask
        return mask.to(x.dtype)

    def _hook(self, j: int) -> Callable[[nn.Module, tuple[Any, ...], torch.Tensor], torch.Tensor]:
        def hook(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
            x = args[0]
            return x * self._mask(j, module, x)

        return hook

    def __enter__(self) -> "ConsistentMasks":
        self._handles = [m.register_forward_hook(self._hook(j)) for j, m in enumerate(self.layers)]
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


def _log_probs(model: Any, res: dict[str, torch.Tensor]) -> torch.Tensor:
    if model.head_extension is not None:
        return torch.log(res["probs"].clamp_min(torch.finfo(torch.float32).tiny))
    logits = res["logits"]
    if model.open_set:
        logits = logits[:, : model.num_classes]
    return F.log_softmax(logits.float(), dim=1)


def mc_outputs(
    model: Any,
    pools: Any,
    indices: Sequence[int] | np.ndarray,
    n_samples: int,
    *,
    seed: int,
    names: Sequence[str] | str = ("log_probs",),
    batch_size: int | None = None,
) -> dict[str, torch.Tensor]:
    """``n_samples`` consistent MC-dropout passes over ``indices`` of ``pools``.

    Parameters
    ----------
    model : ALModel
        A model with at least one dropout layer.
    pools : Pools
        Where the inputs come from.
    indices : array of int
        Pool indices (U of them).
    n_samples : int
        Number of passes S.
    seed : int
        Seeds the masks (see :class:`ConsistentMasks`); strategies derive it
        from their seed, the cycle and the interactions so far.
    names : str or sequence of str
        ``"log_probs"`` and/or any output the model provides.
    batch_size : int, optional
        Inputs per forward pass (default ``model.eval_batch_size``); the
        result does not depend on it.

    Returns
    -------
    dict of str to torch.Tensor
        Each ``U x S x ...`` (float32, on the model's device).
    """
    names = _check_request(model, n_samples, names)
    idx = np.ascontiguousarray(indices, dtype=np.int64)
    if idx.size == 0:
        return {n: torch.zeros((0, n_samples), device=model.device) for n in names}
    model.build_extensions(pools.inputs(idx[:2]))
    bs = int(batch_size or model.eval_batch_size)
    parts: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    devices = [model.device.index or 0] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), ConsistentMasks(model, seed) as masks:
        for start in range(0, idx.size, bs):
            for n, v in _passes(model, masks, pools.inputs(idx[start : start + bs]), n_samples, names).items():
                parts[n].append(v)
    return {n: torch.cat(v) for n, v in parts.items()}


def _check_request(model: Any, n_samples: int, names: Sequence[str] | str) -> list[str]:
    """Refuse a bad request before anything runs; the requested names as a list."""
    check_positive_int("n_samples", n_samples)
    require_dropout(model)
    if model.task != "classification" and "log_probs" in names:
        raise InvalidParameterError("'log_probs' needs a classification model; ask for 'logits' for regression")
    return [names] if isinstance(names, str) else list(names)


def _passes(model: Any, masks: ConsistentMasks, x: torch.Tensor, n_samples: int, names: list[str]) -> dict[str, torch.Tensor]:
    """``n_samples`` masked passes over one batch: each name ``B x S x ...``."""
    need = [n for n in names if n != "log_probs"]
    if "log_probs" in names:  # from the class logits, or from a replacing head's scores
        need.append("probs" if model.head_extension is not None else "logits")
    need = list(dict.fromkeys(need))
    per: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    for s in range(n_samples):
        masks.sample = s
        res = model.predict_batch(x, need)
        for n in names:
            per[n].append(_log_probs(model, res) if n == "log_probs" else res[n])
    return {n: torch.stack(v, dim=1) for n, v in per.items()}


def entropy_nats(log_p: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``-sum p log p`` over ``dim`` from log-probabilities (0 log 0 = 0)."""
    p = log_p.exp()
    return -torch.where(p > 0, p * log_p, torch.zeros_like(p)).sum(dim=dim)


def bald_scores(log_probs: torch.Tensor) -> torch.Tensor:
    """BALD mutual information per row of ``U x S x C`` log-probabilities, in float64.

    ``I[y; w | x] = H[mean_s p_s] - mean_s H[p_s]`` (Houlsby et al. 2011), in nats.
    """
    if log_probs.ndim != 3:
        raise InvalidParameterError(f"log_probs must be U x S x C, got shape {tuple(log_probs.shape)}")
    lp = log_probs.double()
    mean_lp = torch.logsumexp(lp, dim=1) - math.log(lp.shape[1])
    return entropy_nats(mean_lp, dim=-1) - entropy_nats(lp, dim=-1).mean(dim=1)
