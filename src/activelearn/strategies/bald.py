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

import math
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np
import torch

from ..mc_dropout import bald_scores, entropy_nats, require_dropout
from .base import ScoreStrategy, positive_int, require_softmax
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
        Bound on the ``rows x M x C`` tensor of one scoring chunk.
    seed : int, optional
        Seeds the subset, the dropout masks and the sampled configurations.

    Notes
    -----
    Memory: the candidates' ``U x K x C`` log-probabilities (float64) are held
    for the whole greedy loop, plus ``M x K`` joint probabilities and one
    bounded scoring chunk.  Choices left open by the paper: entropies in nats;
    configurations are re-sampled from scratch each step once sampling starts
    (as ``batchbald_redux`` does); ``score`` (used when BatchBALD is the scorer
    of a combination) is plain BALD, which is BatchBALD's first greedy step.
    """

    requires = frozenset({"probs"})
    needs_dropout: ClassVar[bool] = True
    _constraints: ClassVar[dict[str, Callable[[str, Any], None]]] = {
        **_CONSTRAINTS, "n_configs": positive_int, "max_elements": positive_int,
    }

    def __init__(
        self,
        *,
        n_samples: int = 20,
        n_configs: int = 10_000,
        subset: int | None = None,
        chunk: int = 4096,
        max_elements: int = 2**24,
        seed: int | None = None,
    ) -> None:
        super().__init__(subset=subset, seed=seed)
        self.n_samples = n_samples
        self.n_configs = n_configs
        self.chunk = chunk
        self.max_elements = max_elements

    def score(self, model: "ALModel", pools: "Pools", indices: np.ndarray) -> np.ndarray:
        """BALD of each index (BatchBALD's first greedy step)."""
        return _chunked_bald(self, model, pools, indices)

    def select(self, model: "ALModel", pools: "Pools", budget: int) -> np.ndarray:
        cand = self.candidates(pools, budget)
        lp = mc_log_probs(self, model, pools, cand, self.n_samples, self.chunk)
        gen = torch.Generator().manual_seed(int(self.rng(pools, 3).integers(0, 2**62)))
        picks = batchbald_select(lp, budget, self.n_configs, generator=gen, max_elements=self.max_elements)
        return cand[picks]


def batchbald_select(
    log_probs: torch.Tensor,
    batch_size: int,
    n_configs: int,
    *,
    generator: torch.Generator | None = None,
    max_elements: int = 2**24,
) -> np.ndarray:
    """Greedy BatchBALD on ``N x K x C`` log-probabilities; returns ``batch_size`` row numbers in pick order.

    Step ``i`` picks the row maximising ``H[y_1..y_{i-1}, y] - sum H[y_j | w]``
    (the conditional entropies of the picked rows plus the candidate's).  The
    joint over the picked rows is kept exactly as an ``M' x K`` matrix of
    configuration probabilities under each MC sample while ``C ** (i-1) <=
    n_configs``; beyond that, ``n_configs // K`` configurations per MC sample
    are drawn with ``torch.multinomial`` from ``generator`` and the joint
    entropy is estimated by importance sampling.  Ties go to the lowest row.
    """
    lp = log_probs.double()
    n, k, c = lp.shape
    batch_size = min(int(batch_size), n)
    probs = lp.exp()
    cond = entropy_nats(lp, dim=-1).mean(dim=1)  # N: E_w H[y | w]
    joint = torch.ones((1, k), dtype=torch.float64, device=lp.device)  # configurations x K
    exact = True
    picked: list[int] = []
    for i in range(batch_size):
        if i > 0:
            if c ** len(picked) > n_configs:
                joint, exact = _sample_configs(probs[picked], n_configs, generator), False
            else:
                joint = (joint.t()[:, :, None] * probs[picked[-1]][:, None, :]).reshape(k, -1).t()
        scores = _joint_entropies(joint, probs, exact, max_elements) - cond - cond[picked].sum()
        scores[picked] = -math.inf
        best = scores.max()
        picked.append(int(torch.nonzero(scores == best)[0, 0]))
    return np.asarray(picked, dtype=np.int64)


def _sample_configs(probs_n_k_c: torch.Tensor, m: int, generator: torch.Generator | None) -> torch.Tensor:
    """``(m // K) * K x K`` probabilities, under each MC sample, of configurations drawn per sample."""
    n, k, c = probs_n_k_c.shape
    per = max(m // k, 1)
    choices = torch.multinomial(probs_n_k_c.reshape(-1, c), per, replacement=True, generator=generator).reshape(n, k, per)
    log_joint = torch.zeros((k, k, per), dtype=probs_n_k_c.dtype, device=probs_n_k_c.device)
    for j in range(n):  # one picked point at a time: K x K x per, never n x K x K x per
        # [evaluating sample, drawing sample, draw] -> p_evaluating(y_j = drawn label)
        log_joint += torch.log(torch.gather(probs_n_k_c[j][:, None, :].expand(k, k, c), 2, choices[j][None].expand(k, k, per)))
    return log_joint.exp().reshape(k, -1).t()


def _joint_entropies(joint: torch.Tensor, probs: torch.Tensor, exact: bool, max_elements: int) -> torch.Tensor:
    """``H[picked, y_x]`` for every row ``x`` of ``probs`` (N x K x C), chunked so rows x M x C stays bounded."""
    m, k = joint.shape
    n, _, c = probs.shape
    out = torch.empty(n, dtype=torch.float64, device=probs.device)
    rows = max(1, int(max_elements) // max(m * c, 1))
    q = joint.mean(dim=1)[None, :, None]  # 1 x M x 1: probability of each configuration
    for a in range(0, n, rows):
        p = torch.matmul(joint, probs[a : a + rows]) / k  # b x M x C
        nats = -torch.where(p > 0, p * torch.log(p), torch.zeros_like(p))
        out[a : a + p.shape[0]] = nats.sum(dim=(1, 2)) if exact else (nats / q).sum(dim=(1, 2)) / m
    return out
