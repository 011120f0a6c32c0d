"""BALD and BatchBALD: mutual information between predictions and MC-dropout weights.

* BALD (Houlsby, Huszar, Ghahramani & Lengyel 2011, "Bayesian Active Learning
  for Classification and Preference Learning"; with MC dropout: Gal, Islam &
  Ghahramani 2017, "Deep Bayesian Active Learning with Image Data") scores each
  point by ``I[y; w | x] = H[mean_s p_s(y|x)] - mean_s H[p_s(y|x)]`` over ``S``
  MC-dropout samples and takes the top ``budget``.
* BatchBALD (Kirsch, van Amersfoort & Gal 2019) picks the batch greedily by the
  joint mutual information ``I[y_1..y_b; w] = H[y_1..y_b] - sum_i H[y_i | w]``.

The MC samples come from :meth:`activelearn.ALModel.mc_outputs`: consistent
masks (the same ``S`` dropout masks for every point, which the joint entropy of
BatchBALD requires), seeded from the strategy's seed, the cycle and the
interactions so far.  A model without dropout layers raises
:class:`~activelearn.exceptions.InvalidParameterError` saying to build the
backbone with ``dropout=...``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np
import torch

from ..mc_dropout import bald_scores, require_dropout
from ..ops.batchbald import batchbald_select
from .base import ScoreStrategy, a_bool, positive_int, require_softmax
from .registry import register

if TYPE_CHECKING:
    from ..model import ALModel
    from ..pools import Pools

__all__ = ["BALD", "BatchBALD", "batchbald_select", "mc_log_probs"]


def mc_log_probs(
    strategy: ScoreStrategy, model: "ALModel", pools: "Pools", indices: np.ndarray, n_samples: int, chunk: int
) -> torch.Tensor:
    """``U x S x C`` MC-dropout log-probabilities of ``indices``, computed ``chunk`` rows at a time."""
    name = strategy.name or type(strategy).__name__
    require_dropout(model, f"{name!r}")
    require_softmax(model, name)
    seed = int(strategy.rng(pools, 2).integers(0, 2**62))
    parts = [
        model.mc_outputs(pools, indices[a : a + chunk], n_samples, seed=seed)["log_probs"].double()
        for a in range(0, indices.size, chunk)
    ]
    return torch.cat(parts)


_CONSTRAINTS: dict[str, Callable[[str, Any], None]] = {"n_samples": positive_int, "chunk": positive_int}


@register("bald")
class BALD(ScoreStrategy):
    """Top-``budget`` BALD scores over MC-dropout samples.

    Parameters
    ----------
    n_samples : int, default 20
        MC-dropout passes ``S`` (Gal et al. 2017 use T = 20).
    subset : int or None
        Score a seeded random subset of the unlabeled pool (None: all).
    chunk : int, default 4096
        Pool points whose ``S x C`` log-probabilities are held at once (the
        score is reduced per chunk, so memory is ``chunk * S * C``).
    seed : int, optional
        Seeds the subset and the dropout masks.

    Notes
    -----
    Choices the papers leave open: entropies in nats; consistent masks (the
    same S masks for every point; for BALD alone independent masks would be as
    valid); the model otherwise in evaluation mode (batch-norm with running
    statistics); ties to the lowest index.  Needs a backbone with dropout
    (``build_backbone(..., dropout=0.5)``); without it, ``select`` raises.
    """

    requires = frozenset({"probs"})
    #: the contract tests build the model with dropout for strategies that set this
    needs_dropout: ClassVar[bool] = True
    _constraints: ClassVar[dict[str, Callable[[str, Any], None]]] = _CONSTRAINTS

    def __init__(self, *, n_samples: int = 20, subset: int | None = None, chunk: int = 4096, seed: int | None = None) -> None:
        super().__init__(subset=subset, seed=seed)
        self.n_samples = n_samples
        self.chunk = chunk

    def score(self, model: "ALModel", pools: "Pools", indices: np.ndarray) -> np.ndarray:
        """BALD mutual information (nats) of each index."""
        return _chunked_bald(self, model, pools, indices)


def _chunked_bald(strategy: Any, model: "ALModel", pools: "Pools", indices: np.ndarray) -> np.ndarray:
    out = np.empty(indices.size, dtype=np.float64)
    for a in range(0, indices.size, strategy.chunk):
        part = indices[a : a + strategy.chunk]
        lp = mc_log_probs(strategy, model, pools, part, strategy.n_samples, strategy.chunk)
        out[a : a + part.size] = bald_scores(lp).cpu().numpy()
    return out


@register("batchbald")
class BatchBALD(ScoreStrategy):
    """Greedy BatchBALD over MC-dropout samples (Kirsch, van Amersfoort & Gal 2019).

    Parameters
    ----------
    n_samples : int, default 20
        MC-dropout passes ``K``.
    n_configs : int, default 10_000
        ``M``: the joint entropy of the points chosen so far is exact while
        ``C ** n <= M`` (all label configurations enumerated), and estimated
        from ``(M // K) * K`` sampled configurations afterwards (importance
        sampling, as in the paper's Section 3.3 and ``batchbald_redux``).
    subset : int or None
        Candidates: a seeded random subset of the unlabeled pool (None: all).
    chunk : int, default 4096
        Rows per MC pass batch when computing the log-probabilities.
    max_elements : int, default 2**24
        Bound on the ``rows x M x C`` block of one scoring chunk (the chunk:
        ``max_elements // (M C)`` candidates at a time: 128 MiB of float64, overwritten in place).
    lazy : bool, default True
        Lazy greedy: re-evaluate candidates in decreasing order of their last
        gain and stop once no stale gain can beat the best fresh score (exact
        while the configurations are enumerated, by submodularity; see
        :mod:`activelearn.ops.batchbald`).
    seed : int, optional
        Seeds the subset, the dropout masks and the sampled configurations.

    Notes
    -----
    The greedy runs in :func:`activelearn.ops.batchbald.batchbald_select`:
    the picked points' configurations are kept as an ``M x K`` table and
    extended by one point per step (exact while ``C ** n <= M``, then sampled
    once and each configuration extended with one label drawn under its own
    MC sample), never recomputed over all picked rows.  Memory: the
    candidates' ``U x K x C`` log-probabilities and probabilities (float64),
    the ``M x K`` table and one scoring chunk.  Choices left open by the paper:
    entropies in nats; configurations drawn once and extended (the paper's
    estimator with shared draws; ``batchbald_redux`` redraws them every step);
    ``score`` (used when BatchBALD is the scorer of a combination) is plain
    BALD, which is BatchBALD's first greedy step.

    Saturation: with ``K`` MC samples the batch's information about ``w`` is
    at most ``log K`` nats.  Once every sampled configuration identifies the
    MC sample it was drawn under (the usual case after a few dozen picks with
    ``K = 20``), every candidate's estimated gain is 0 and the remaining picks
    follow the candidates' order (rounding decides); use more ``n_samples``
    for large batches.
    """

    requires = frozenset({"probs"})
    needs_dropout: ClassVar[bool] = True
    _constraints: ClassVar[dict[str, Callable[[str, Any], None]]] = {
        **_CONSTRAINTS, "n_configs": positive_int, "max_elements": positive_int, "lazy": a_bool,
    }

    def __init__(
        self,
        *,
        n_samples: int = 20,
        n_configs: int = 10_000,
        subset: int | None = None,
        chunk: int = 4096,
        max_elements: int = 2**24,
        lazy: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__(subset=subset, seed=seed)
        self.n_samples = n_samples
        self.n_configs = n_configs
        self.chunk = chunk
        self.max_elements = max_elements
        self.lazy = lazy

    def score(self, model: "ALModel", pools: "Pools", indices: np.ndarray) -> np.ndarray:
        """BALD of each index (BatchBALD's first greedy step)."""
        return _chunked_bald(self, model, pools, indices)

    def select(self, model: "ALModel", pools: "Pools", budget: int) -> np.ndarray:
        cand = self.candidates(pools, budget)
        lp = mc_log_probs(self, model, pools, cand, self.n_samples, self.chunk)
        gen = torch.Generator().manual_seed(int(self.rng(pools, 3).integers(0, 2**62)))
        picks = batchbald_select(lp, budget, self.n_configs, generator=gen, max_elements=self.max_elements, lazy=self.lazy)
        return cand[picks]
