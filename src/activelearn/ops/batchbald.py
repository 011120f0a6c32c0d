"""Greedy BatchBALD on precomputed MC log-probabilities (Kirsch, van Amersfoort & Gal 2019).

Step ``i`` of the greedy picks the candidate ``x`` maximising
``H[y_1..y_{i-1}, y_x] - sum_j H[y_j | w] - H[y_x | w]`` over the ``K`` MC
samples ``w``.  The joint entropy needs, for every label configuration ``m``
of the picked points, its probability under each MC sample: an ``M x K``
matrix ``P[m, k]``.  Then ``p(m, c) = 1/K sum_k P[m, k] p_k(y_x = c)`` and

* exact (all ``C ** n <= n_configs`` configurations enumerated):
  ``H = -sum_{m,c} p(m, c) log p(m, c)``;
* sampled (Kirsch et al. 2019, Section 3.3 / Appendix): ``M' = (n_configs //
  K) * K`` configurations, ``n_configs // K`` drawn under each MC sample,
  estimate ``H = 1/M' sum_m sum_c -p(m, c) log p(m, c) / q(m)`` with
  ``q(m) = 1/K sum_k P[m, k]``.

Incremental state.  ``P`` is kept (as ``log P``) and extended by one point
per step: exactly (``M -> M C`` rows) while ``C ** n <= n_configs``; at the
first step past that, the configurations of all picked points are drawn once;
afterwards each configuration (tied to the MC sample it was drawn under) is
extended with one label of the new point drawn under that same sample and
``log P`` gains that label's log-probability under every sample.  A
configuration drawn this way has the same distribution as one drawn from
scratch (the labels are independent given ``w``), so the estimator is the
paper's; only its draws are shared across steps.  ``batchbald_redux``
instead redraws all configurations at every step, which costs ``n K M``
work per step and changes the draws; ``resample=True`` reproduces it
(same ``torch.multinomial`` calls, used to compare against it in tests).

Scale.  In the sampled regime each row of ``P`` is divided by its largest
entry before use (products of hundreds of probabilities underflow float64);
this adds the same constant to every candidate's estimate and to ``H`` of
the picked points, so gains and picks are unchanged.

Lazy greedy.  The joint mutual information is submodular (Kirsch et al.
2019, Section 3.2), so a candidate's gain at an earlier step bounds its gain
now.  With ``lazy=True`` candidates are evaluated in blocks in decreasing order
of their stale gains until the best fresh score beats every remaining bound:
exact in the exact regime (bounds are compared with a ``1e-9`` slack for
rounding); in the sampled regime the estimates are not guaranteed
submodular, so a pick can differ from the full greedy's by no more than the
estimates' change since that candidate's last evaluation.  ``lazy=False``
evaluates every candidate at every step.

Cost per evaluated candidate: ``M K C`` multiply-adds and ``M C`` logarithms
(``K C`` once its configurations have collapsed, see
:func:`conditional_entropies`).  Memory: the ``N x K x C`` log-probabilities
(the input), ``N x K`` per-sample entropies, the ``M x K`` table and one block
of ``rows x M x C`` values with ``rows = max_elements // (M C)`` (probabilities
are exponentiated per block).
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["batchbald_select", "joint_entropies", "conditional_entropies"]

_SLACK = 1e-9  # relative slack when comparing a fresh score with a stale bound (rounding)
_ROWS = 65536  # rows exponentiated at once outside the scoring blocks
_COLLAPSED = 1e-12  # posterior mass off its top MC sample below which a configuration counts as collapsed


def joint_entropies(joint: torch.Tensor, probs: torch.Tensor, max_elements: int = 2**24) -> torch.Tensor:
    """Exact ``H[picked, y_x]`` for every row ``x`` of ``probs`` (``N x K x C``).

    ``joint`` is ``M x K``: the probability of each enumerated configuration
    ``m`` of the picked points under MC sample ``k``.  Rows are processed
    ``max_elements // (M C)`` at a time as one ``(M x K) @ (K x rows C)``
    product.
    """
    m, k = joint.shape
    n, _, c = probs.shape
    out = torch.empty(n, dtype=probs.dtype, device=probs.device)
    rows = max(1, int(max_elements) // max(m * c, 1))
    for a in range(0, n, rows):
        block = probs[a : a + rows]
        b = block.shape[0]
        p = torch.matmul(joint, block.permute(1, 0, 2).reshape(k, b * c)) / k  # M x (b C)
        out[a : a + b] = -torch.special.xlogy(p, p, out=p).sum(dim=0).reshape(b, c).sum(dim=1)
    return out


def conditional_entropies(
    log_joint: torch.Tensor, probs: torch.Tensor, sample_entropies: torch.Tensor | None = None, max_elements: int = 2**24
) -> torch.Tensor:
    """Sampled estimate of ``H[y_x | picked]`` for every row ``x`` of ``probs`` (``N x K x C``).

    ``log_joint`` is ``M x K``: log-probability of each sampled configuration
    under each MC sample (any per-row shift).  With ``pi_m`` the posterior over
    MC samples given configuration ``m`` and ``q(m)`` its probability, the
    paper's estimate ``1/M sum_m sum_c -p(m, c) log p(m, c) / q(m)`` equals
    ``-1/M sum_m log q(m)`` (the same for every ``x``, left out here) plus
    ``1/M sum_m H[pi_m @ p_x]``.  Configurations whose posterior has
    collapsed onto one sample ``k`` (mass off it below ``1e-12``) contribute
    ``H[p_k(x)]`` (``sample_entropies``, ``N x K``, computed when None).
    """
    return _Posterior(log_joint).entropies(probs, sample_entropies, max_elements)


class _Posterior:
    """Posterior over MC samples of each sampled configuration, collapsed ones counted per sample."""

    def __init__(self, log_joint: torch.Tensor) -> None:
        m, k = log_joint.shape
        post = torch.softmax(log_joint, dim=1)
        top = post.argmax(dim=1, keepdim=True)
        collapsed = post.scatter(1, top, 0.0).sum(dim=1) < _COLLAPSED
        self.m = m
        self.mass = torch.bincount(top[collapsed, 0], minlength=k).to(post.dtype) / m  # K: share of collapsed configurations
        self.active = post[~collapsed]  # M_active x K

    def entropies(self, probs: torch.Tensor, sample_entropies: torch.Tensor | None, max_elements: int) -> torch.Tensor:
        n, k, c = probs.shape
        h = -torch.special.xlogy(probs, probs).sum(dim=2) if sample_entropies is None else sample_entropies
        out = h @ self.mass
        rows = max(1, int(max_elements) // max(self.active.shape[0] * c, 1))
        for a in range(0, n if self.active.shape[0] else 0, rows):
            block = probs[a : a + rows]
            b = block.shape[0]
            r = torch.matmul(self.active, block.permute(1, 0, 2).reshape(k, b * c))  # M_active x (b C)
            out[a : a + b] -= torch.special.xlogy(r, r, out=r).sum(dim=0).reshape(b, c).sum(dim=1) / self.m
        return out


class _Joint:
    """The picked points' configurations: ``M x K`` probabilities (exact) or log-probabilities (sampled)."""

    def __init__(self, k: int, n_configs: int, resample: bool, generator: torch.Generator | None, like: torch.Tensor) -> None:
        self.table = torch.ones((1, k), dtype=like.dtype, device=like.device)  # exact: P; sampled: log P
        self.exact = True
        self.n_configs = n_configs
        self.resample = resample
        self.generator = generator
        self.posterior: _Posterior | None = None  # sampled regime: computed once per added point

    def add(self, picked_probs: torch.Tensor) -> None:
        """Extend by the last row of ``picked_probs`` (``n x K x C`` probabilities of all picked points)."""
        n, k, c = picked_probs.shape
        if self.exact and c**n <= self.n_configs:
            self.table = (self.table.t()[:, :, None] * picked_probs[-1][:, None, :]).reshape(k, -1).t()
        else:
            self.table = self._draw(picked_probs) if self.exact or self.resample else self.table + self._draw(picked_probs[-1:])
            self.exact = False
            self.posterior = _Posterior(self.table)

    def _draw(self, probs: torch.Tensor) -> torch.Tensor:
        """``log P`` of ``(n_configs // K) * K`` configurations of the rows of ``probs``, drawn per MC sample."""
        n, k, c = probs.shape
        per = max(self.n_configs // k, 1)
        choices = torch.multinomial(probs.reshape(-1, c), per, replacement=True, generator=self.generator).reshape(n, k, per)
        out = torch.zeros((k, k, per), dtype=probs.dtype, device=probs.device)
        for j in range(n):  # [evaluating sample, drawing sample, draw] -> log p_evaluating(y_j = drawn label)
            out += torch.log(torch.gather(probs[j][:, None, :].expand(k, k, c), 2, choices[j][None].expand(k, k, per)))
        return out.reshape(k, -1).t()

    def offset(self) -> float:
        """``H[picked]`` (exact regime) or 0 (sampled: :func:`conditional_entropies` already leaves it out)."""
        if not self.exact:
            return 0.0
        q = self.table.mean(dim=1)
        return float(-torch.special.xlogy(q, q).sum())

    def rows(self) -> int:
        """Configurations one candidate's evaluation multiplies against (1 once all sampled ones collapsed)."""
        return self.table.shape[0] if self.posterior is None else max(self.posterior.active.shape[0], 1)

    def part(self, probs: torch.Tensor, sample_entropies: torch.Tensor, max_elements: int) -> torch.Tensor:
        """``H[picked, y_x]`` (exact) or the estimate of ``H[y_x | picked]`` (sampled) of each row of ``probs``."""
        if self.posterior is None:
            return joint_entropies(self.table, probs, max_elements)
        return self.posterior.entropies(probs, sample_entropies, max_elements)


def batchbald_select(
    log_probs: torch.Tensor,
    batch_size: int,
    n_configs: int,
    *,
    generator: torch.Generator | None = None,
    max_elements: int = 2**24,
    lazy: bool = True,
    resample: bool = False,
) -> np.ndarray:
    """Greedy BatchBALD on ``N x K x C`` log-probabilities; returns ``batch_size`` row numbers in pick order.

    See the module notes for the exact / sampled joint entropy, the
    incremental configurations (``resample=True``: redrawn every step, as
    ``batchbald_redux``), the lazy evaluation (``lazy``) and the memory bound
    (``max_elements``).  Ties go to the lowest row.
    """
    lp = log_probs.double()
    n, k, c = lp.shape
    batch_size = min(int(batch_size), n)
    sample_h = torch.empty(lp.shape[:2], dtype=lp.dtype, device=lp.device)  # N x K: H[y | w_k]
    for a in range(0, n, _ROWS):  # probabilities are exponentiated block by block, never all at once
        p = lp[a : a + _ROWS].exp()
        sample_h[a : a + _ROWS] = -torch.where(p > 0, p * lp[a : a + _ROWS], torch.zeros_like(p)).sum(dim=-1)
    cond = sample_h.mean(dim=1)  # N: E_w H[y | w]
    state = _Joint(k, n_configs, resample, generator, lp)
    bound = torch.full((n,), math.inf, dtype=torch.float64)  # stale gains: upper bounds while submodular
    taken = torch.zeros(n, dtype=torch.bool)
    picked: list[int] = []
    for i in range(batch_size):
        if i > 0:
            state.add(lp[picked].exp())
        shared = cond[picked].sum()
        block = max(1, min(int(max_elements) // (state.rows() * c), 4096)) if lazy else n
        best = _lazy_step(state, (lp, sample_h, cond), shared, bound, taken, state.offset() - float(shared), block, max_elements)
        picked.append(best)
        taken[best] = True
    return np.asarray(picked, dtype=np.int64)


def _lazy_step(
    state: _Joint, rows_data: tuple[torch.Tensor, torch.Tensor, torch.Tensor], shared: torch.Tensor,
    bound: torch.Tensor, taken: torch.Tensor, base: float, block: int, max_elements: int,
) -> int:
    """Evaluate candidates by decreasing stale gain until no remaining bound can beat the best score; returns its row.

    ``score = part - (cond + shared)`` (``part`` from :meth:`_Joint.part`) and ``gain = score - base``.
    """
    lp, sample_h, cond = rows_data
    order = torch.argsort(torch.where(taken, -math.inf, bound), descending=True, stable=True)
    order = order[: int((~taken).sum())]
    best_score, best_row = -math.inf, -1
    for a in range(0, order.numel(), block):
        rows = order[a : a + block]
        scores = state.part(lp[rows].exp(), sample_h[rows], max_elements) - (cond[rows] + shared)
        bound[rows] = scores - base
        top = scores.max()
        cand = int(rows[scores == top].min())
        if top > best_score or (top == best_score and cand < best_row):
            best_score, best_row = float(top), cand
        if a + block < order.numel():
            nxt = float(bound[order[a + block]]) + base
            if best_score > nxt + _SLACK * (1.0 + abs(nxt)):
                break
    return best_row
