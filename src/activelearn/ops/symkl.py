"""k-center greedy under the symmetric KL divergence of probability vectors (CDAL's distance).

``d(p, q) = 0.5 KL(p || q) + 0.5 KL(q || p) = 0.5 sum_c (p_c - q_c)(log p_c - log q_c)``
expands to ``0.5 (h_p + h_q - p . log q - q . log p)`` with ``h_p = sum_c p_c log p_c``,
so the distances of every row to one center are two matrix-vector products,
and to a block of centers two matrix products: memory ``O(N C)`` plus one block.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._validation import as_feature_tensor, as_index_array, check_positive_int
from ..exceptions import InvalidInputError, InvalidParameterError

__all__ = ["symmetric_kl", "symkl_kcenter"]

#: probabilities are clamped to at least this before the logarithm
EPS = 1e-12


def _logs(P: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    P = P.to(torch.float64).clamp_min(EPS)
    L = torch.log(P)
    return P, L, (P * L).sum(1)


def symmetric_kl(p: Any, q: Any) -> torch.Tensor:
    """Pairwise ``0.5 KL(p_i || q_j) + 0.5 KL(q_j || p_i)`` (``len(p) x len(q)``, float64).

    For small inputs (tests, inspection); probabilities are clamped to ``1e-12``.
    """
    P, LP, hP = _logs(as_feature_tensor(p, "p"))
    Q, LQ, hQ = _logs(as_feature_tensor(q, "q", device=P.device))
    return (0.5 * (hP[:, None] + hQ[None, :] - P @ LQ.T - LP @ Q.T)).clamp_min_(0.0)


def symkl_kcenter(
    probs: Any,
    budget: int,
    *,
    labeled: Any = None,
    chunk_size: int = 65536,
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Greedy k-center under the symmetric KL divergence.

    Every pick is the non-labeled row whose divergence to its nearest center
    (labeled rows and earlier picks) is largest; ties go to the lowest row.

    Parameters
    ----------
    probs : array_like or torch.Tensor
        ``N x C`` class probabilities (computed in float64, clamped to
        ``1e-12``), on the device where the work should run.
    budget : int
        Rows to pick, ``1 <= budget <= N - |labeled|``.
    labeled : array_like of int or bool, optional
        Rows that are centers from the start.  With none, the first pick is
        ``default_rng(seed).integers(N)``.
    chunk_size : int
        Rows per block; a block against the labeled centers holds
        ``chunk_size x max(1, 2**24 // chunk_size)`` divergences.
    seed : int or numpy.random.Generator, optional
        Only used when nothing is labeled.

    Returns
    -------
    numpy.ndarray
        ``budget`` int64 row indices in pick order.
    """
    budget = check_positive_int("budget", budget)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    t = as_feature_tensor(probs, "probs")
    if bool((t < 0).any()):
        raise InvalidInputError("probs holds negative values; pass class probabilities (e.g. a softmax output)")
    P, L, h = _logs(t)
    n = int(P.shape[0])
    lab = np.zeros(0, dtype=np.int64) if labeled is None else as_index_array(labeled, "labeled", n=n)
    if budget > n - lab.size:
        raise InvalidParameterError(f"budget={budget} exceeds the {n - lab.size} non-labeled rows; pass budget <= {n - lab.size}")
    dev = P.device
    mind = torch.full((n,), float("inf"), dtype=torch.float64, device=dev)
    cb = max(1, (1 << 24) // chunk_size)
    lab_t = torch.as_tensor(lab, dtype=torch.int64, device=dev)
    for s in range(0, n, chunk_size):
        e = min(s + chunk_size, n)
        for t0 in range(0, lab.size, cb):
            r = lab_t[t0 : t0 + cb]
            d = 0.5 * (h[s:e, None] + h[r][None, :] - P[s:e] @ L[r].T - L[s:e] @ P[r].T)
            torch.minimum(mind[s:e], d.min(1).values.clamp_min_(0.0), out=mind[s:e])
    mind[lab_t] = -float("inf")
    picks: list[int] = []
    if lab.size == 0:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        picks.append(int(rng.integers(n)))
        mind[picks[0]] = -float("inf")
    while True:
        if len(picks) == budget:
            return np.asarray(picks, dtype=np.int64)
        if picks:
            c = picks[-1]
            for s in range(0, n, chunk_size):
                e = min(s + chunk_size, n)
                d = (0.5 * (h[s:e] + h[c] - P[s:e] @ L[c] - L[s:e] @ P[c])).clamp_min_(0.0)
                torch.minimum(mind[s:e], d, out=mind[s:e])
        p = int(torch.argmax(mind))  # first maximum: the lowest row on ties
        picks.append(p)
        mind[p] = -float("inf")
