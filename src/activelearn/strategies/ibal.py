"""IBAL, IBAL-D and Entropy-D (Pezeshkpour, Zhao & Singh): representer-point influence plus latent distance.

IBAL scores an unlabeled sample by its expected influence on the labeled set,
through the representer theorem of an L2-regularised last linear layer (Yeh et
al. 2018): ``IBAL(x_i) = [sum_y p_y (1 - p_y)] f_i . (sum_{t in L} f_t) / (2 lambda n)``
(closed form in :func:`activelearn.ops.ibal_scores`) and picks the *lowest*
scores.  **Reading of the paper's formula**: with hypothetical label ``y`` the
representer weight of ``x_i`` is ``alpha_i = (onehot_y - p) / (2 lambda n)``;
the expectation over ``y ~ p`` of that whole vector is exactly zero, so we use,
as METHODS.md explains, the scalar per-class weight ``alpha_{i,y} = (1 - p_y) /
(2 lambda n)`` on the hypothetical class and sum it against the targets.

IBAL-D subtracts ``gamma`` times a distance score ``D`` (the minimum Euclidean
distance to the labeled set in the latent space of a small autoencoder trained
on all pool samples, divided by its maximum); IBAL is divided by its maximum
absolute value first so that ``gamma`` means the same in every cycle.
Entropy-D adds ``gamma * D`` to the entropy.

State: the autoencoder is trained once per pool (its latent codes are cached on
the strategy, keyed by ``pools.uid``) -- the one piece of state these
strategies keep between calls.  Its training is seeded by ``seed``;
:meth:`state_dict` holds its weights so a resumed run scores with the same
autoencoder without training it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np
import torch

from ..ops.kcenter import min_distances
from ..ops.representer import ibal_scores, with_bias
from .autoencoder import build_autoencoder, fit_autoencoder, pool_latents
from .base import ScoreStrategy, nonnegative_real, positive_int, positive_real
from .registry import register

if TYPE_CHECKING:
    from ..model import ALModel
    from ..pools import Pools

__all__ = ["IBAL", "IBALD", "EntropyD"]

#: rows scored at once: the float64 copies of one block's probabilities and features
#: (with the bias column) are the only working memory beyond the cached outputs
#: (16,384 x 257 x 8 B = 32 MiB for a 256-d penultimate layer)
SCORE_ROWS = 16384
#: distance block bound of IBAL-D / Entropy-D: ``min(chunk_size, DIST_ELEMS // |L|)`` rows x ``|L|``
#: labeled codes at a time (2**21 float64 values, 16 MiB, per temporary of the block)
DIST_ELEMS = 2**21


@register("ibal")
class IBAL(ScoreStrategy):
    """Lowest IBAL score first (influence on the labeled set through representer values).

    Parameters
    ----------
    lam : float
        L2 regulariser ``lambda`` of the last layer in ``alpha``'s normaliser
        (it only rescales IBAL, so the ranking does not depend on it).
    subset, seed : optional
        As in :class:`~activelearn.strategies.ScoreStrategy`.

    Notes
    -----
    Memory: the model's cached outputs plus one block of ``SCORE_ROWS``
    (16,384) rows in float64.
    """

    requires = frozenset({"probs", "embeddings"})
    _constraints: ClassVar[dict[str, Callable[[str, Any], None]]] = {"lam": positive_real}

    def __init__(self, *, lam: float = 1e-3, subset: int | None = None, seed: int | None = None) -> None:
        super().__init__(subset=subset, seed=seed)
        self.lam = lam

    def ibal(self, model: "ALModel", pools: "Pools", indices: np.ndarray) -> torch.Tensor:
        """IBAL of ``indices`` (float64, on the model's device), ``SCORE_ROWS`` rows at a time."""
        lab = with_bias(model.outputs(pools, pools.labeled, "embeddings")["embeddings"].double())
        parts = []
        for a in range(0, indices.size, SCORE_ROWS):
            out = model.outputs(pools, indices[a : a + SCORE_ROWS], ["probs", "embeddings"])
            parts.append(ibal_scores(out["probs"].double(), with_bias(out["embeddings"].double()), lab, self.lam, n=pools.n_labeled))
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64, device=model.device)

    def score(self, model: "ALModel", pools: "Pools", indices: np.ndarray) -> np.ndarray:
        return (-self.ibal(model, pools, indices)).cpu().numpy()


class _DistanceMixin:
    """The autoencoder distance score ``D`` (cached latent codes per pool)."""

    latent_dim: int
    ae_epochs: int
    ae_batch_size: int
    ae_lr: float
    chunk_size: int
    seed: int | None

    def latents(self, model: "ALModel", pools: "Pools") -> torch.Tensor:
        """Latent codes of every pool sample, from the autoencoder trained once per pool (or loaded)."""
        cache = self.__dict__.setdefault("_latent_cache", {})
        key = (pools.uid, pools.n)
        if key not in cache:
            cache.clear()
            loaded = self.__dict__.pop("_loaded_ae", None)
            example = pools.inputs(np.arange(min(2, pools.n)))
            if loaded is not None and tuple(loaded["input_shape"]) == tuple(example.shape[1:]):
                with torch.random.fork_rng(devices=[]):  # weights overwritten: global RNG untouched
                    ae = build_autoencoder(tuple(example.shape[1:]), self.latent_dim)
                ae.load_state_dict(loaded["weights"])
                ae = ae.to(model.device).eval()
            else:
                ae = fit_autoencoder(
                    pools, latent_dim=self.latent_dim, epochs=self.ae_epochs, batch_size=self.ae_batch_size,
                    lr=self.ae_lr, seed=0 if self.seed is None else int(self.seed), device=model.device,
                )
            self._ae = (tuple(example.shape[1:]), ae)
            cache[key] = pool_latents(ae, pools, model.device)
        return cache[key]

    def state_dict(self) -> dict[str, Any]:
        """The trained autoencoder (input shape and weights); empty before the first score."""
        trained = self.__dict__.get("_ae")
        if trained is None:
            loaded = self.__dict__.get("_loaded_ae")
            return dict(loaded) if loaded is not None else {}
        shape, ae = trained
        return {"input_shape": list(shape), "weights": {k: v.detach().cpu() for k, v in ae.state_dict().items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`: the next pool scored uses this autoencoder instead of training one."""
        self.__dict__.pop("_ae", None)
        self.__dict__.get("_latent_cache", {}).clear()
        self._loaded_ae = dict(state) if state else None

    def distance(self, model: "ALModel", pools: "Pools", indices: np.ndarray) -> torch.Tensor:
        """``D``: min latent distance to the labeled set, divided by its max over ``indices``."""
        z = self.latents(model, pools)
        rows = max(1, min(self.chunk_size, DIST_ELEMS // max(pools.n_labeled, 1)))  # one block: rows x |L| distances
        d = min_distances(z[torch.from_numpy(indices).to(z.device)].double(), z[torch.from_numpy(pools.labeled).to(z.device)].double(), chunk_size=rows)
        d = torch.as_tensor(d, dtype=torch.float64, device=z.device)
        d = torch.where(torch.isfinite(d), d, torch.zeros_like(d))
        top = d.max() if d.numel() else d.new_tensor(0.0)
        return d / top if top > 0 else d


_DIST_CONSTRAINTS: dict[str, Callable[[str, Any], None]] = {
    "gamma": nonnegative_real,
    "latent_dim": positive_int,
    "ae_epochs": positive_int,
    "ae_batch_size": positive_int,
    "ae_lr": positive_real,
    "chunk_size": positive_int,
}

_DIST_DOC = """
    gamma : float
        Weight of the distance score ``D`` (default 1).
    latent_dim : int
        Autoencoder code size (capped at the input size for vectors).
    ae_epochs, ae_batch_size, ae_lr : int, int, float
        Autoencoder training (Adam, MSE), once per pool.
    chunk_size : int
        Rows per distance block, at most; capped at ``DIST_ELEMS // |L|``
        (2**21 // |L|) so a block holds 2**21 distances whatever the labeled
        set's size.
"""


@register("ibal_d")
class IBALD(_DistanceMixin, IBAL):
    __doc__ = """Lowest ``IBAL / max|IBAL| - gamma * D`` first (IBAL-D).

    Parameters
    ----------
    lam : float
        As in :class:`IBAL`.""" + _DIST_DOC + """    subset, seed : optional
        As in :class:`~activelearn.strategies.ScoreStrategy`; ``seed`` also seeds the autoencoder.
    """

    _constraints: ClassVar[dict[str, Callable[[str, Any], None]]] = dict(_DIST_CONSTRAINTS)

    def __init__(
        self,
        *,
        lam: float = 1e-3,
        gamma: float = 1.0,
        latent_dim: int = 16,
        ae_epochs: int = 20,
        ae_batch_size: int = 128,
        ae_lr: float = 1e-3,
        chunk_size: int = 65536,
        subset: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(lam=lam, subset=subset, seed=seed)
        self.gamma, self.latent_dim, self.ae_epochs = gamma, latent_dim, ae_epochs
        self.ae_batch_size, self.ae_lr, self.chunk_size = ae_batch_size, ae_lr, chunk_size

    def score(self, model: "ALModel", pools: "Pools", indices: np.ndarray) -> np.ndarray:
        ib = self.ibal(model, pools, indices)
        top = ib.abs().max()
        ib = ib / top if top > 0 else ib
        return (-(ib - self.gamma * self.distance(model, pools, indices))).cpu().numpy()


@register("entropy_d")
class EntropyD(_DistanceMixin, ScoreStrategy):
    __doc__ = """Highest ``entropy + gamma * D`` first (Entropy-D); entropy in nats, unnormalised.

    Parameters
    ----------""" + _DIST_DOC + """    subset, seed : optional
        As in :class:`~activelearn.strategies.ScoreStrategy`; ``seed`` also seeds the autoencoder.
    """

    requires = frozenset({"probs"})
    _constraints: ClassVar[dict[str, Callable[[str, Any], None]]] = dict(_DIST_CONSTRAINTS)

    def __init__(
        self,
        *,
        gamma: float = 1.0,
        latent_dim: int = 16,
        ae_epochs: int = 20,
        ae_batch_size: int = 128,
        ae_lr: float = 1e-3,
        chunk_size: int = 65536,
        subset: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(subset=subset, seed=seed)
        self.gamma, self.latent_dim, self.ae_epochs = gamma, latent_dim, ae_epochs
        self.ae_batch_size, self.ae_lr, self.chunk_size = ae_batch_size, ae_lr, chunk_size

    def score(self, model: "ALModel", pools: "Pools", indices: np.ndarray) -> np.ndarray:
        p = model.outputs(pools, indices, "probs")["probs"].double()
        ent = -(p * torch.log(p.clamp_min(1e-12))).sum(dim=1)
        return (ent + self.gamma * self.distance(model, pools, indices)).cpu().numpy()
