"""Analysis tools for selections: subset information and subset diversity.

DACS (Kim & Shin 2022, Fig. 5) compares strategies by the *information* and the
*diversity* of what they select; NCE-Net (Wan et al. 2021, Eq. 10-12) defines
the information.  This module computes both for any selection, and
:class:`SelectionAnalyzer` records them for every cycle of an
:class:`~activelearn.loop.ActiveLoop` into ``CycleRecord.extra``::

    loop = make_loop("digits", "entropy")
    loop.callbacks.append(SelectionAnalyzer())
    history = loop.run()
    history.column("subset_information"), history.column("subset_diversity")

Definitions
-----------
* sample information ``I(x) = -log max_c p_c`` (0 for a sure prediction);
* normalised over the pool: ``I(x) / sum_{u in U} I(u)`` with ``U`` the unlabeled
  pool at selection time, so the information of a subset ``S`` (the sum over
  ``S``) is the fraction of the pool's information it holds, in [0, 1].  The
  paper's exact normalising constant is not restated in METHODS.md; this choice
  makes values comparable across cycles and pool sizes (``normalize=False``
  gives the raw sum);
* diversity: the mean pairwise distance of the selected set, over ``i < j``,
  computed in row chunks (memory O(chunk x |S|), never |S| x |S|).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .exceptions import InvalidInputError, InvalidParameterError

if TYPE_CHECKING:
    from .history import CycleRecord, History
    from .loop import ActiveLoop

__all__ = ["sample_information", "subset_information", "subset_diversity", "SelectionAnalyzer", "selection_table"]


def _as_tensor(x: Any) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    return t.double()


def sample_information(probs: Any) -> torch.Tensor:
    """``I(x) = -log max_c p_c`` per row of ``probs`` (softmax or per-class scores)."""
    p = _as_tensor(probs)
    if p.ndim != 2 or p.shape[0] == 0:
        raise InvalidInputError(f"probs must be a non-empty N x C array, got shape {tuple(p.shape)}")
    return -torch.log(p.max(dim=1).values.clamp_min(1e-300))


def subset_information(probs: Any, selected: Any, *, normalize: bool = True) -> float:
    """Information of the rows ``selected`` of ``probs`` (the pool's class probabilities).

    Parameters
    ----------
    probs : array-like or torch.Tensor, N x C
        Class probabilities (or NCE-Net per-class scores) of the whole pool the
        selection was drawn from.
    selected : array-like of int
        Row positions (into ``probs``) of the selected samples.
    normalize : bool
        Divide by the pool's total information (see the module docstring).

    Returns
    -------
    float
        ``sum_{x in S} I(x)``, divided by ``sum_{x in pool} I(x)`` when
        ``normalize`` (0 when the pool holds no information).
    """
    info = sample_information(probs)
    sel = np.asarray(selected, dtype=np.int64).reshape(-1)
    if sel.size and (sel.min() < 0 or sel.max() >= info.shape[0]):
        raise InvalidInputError(f"selected rows must lie in [0, {info.shape[0]}), got {sel.min()}..{sel.max()}")
    total = float(info[torch.from_numpy(sel).to(info.device)].sum())
    if not normalize:
        return total
    pool = float(info.sum())
    return total / pool if pool > 0 else 0.0


def subset_diversity(features: Any, *, metric: str = "euclidean", chunk_size: int = 1024) -> float:
    """Mean pairwise distance of a set of feature vectors (over pairs ``i < j``).

    Parameters
    ----------
    features : array-like or torch.Tensor, n x d
        The selected samples' features (e.g. penultimate embeddings).
    metric : {"euclidean", "cosine"}
        Euclidean distance, or cosine distance ``1 - cos``.
    chunk_size : int
        Rows per block; memory is O(chunk_size x n).

    Returns
    -------
    float
        0 for fewer than two vectors.
    """
    if metric not in ("euclidean", "cosine"):
        raise InvalidParameterError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise InvalidParameterError(f"chunk_size must be a positive int, got {chunk_size!r}")
    z = _as_tensor(features)
    z = z.reshape(z.shape[0], -1) if z.ndim != 2 else z
    n = z.shape[0]
    if n < 2:
        return 0.0
    if metric == "cosine":
        z = torch.nn.functional.normalize(z, dim=1)
    sq = z.pow(2).sum(1)
    total = torch.zeros((), dtype=torch.float64, device=z.device)
    for start in range(0, n, chunk_size):
        block = z[start : start + chunk_size]
        if metric == "cosine":
            d = 1.0 - block @ z.T
        else:
            d = (sq[start : start + chunk_size, None] - 2 * block @ z.T + sq[None]).clamp_min(0).sqrt()
        total += d.clamp_min(0).sum()
    # every pair counted twice, the diagonal is (numerically) zero
    return float(total) / (n * (n - 1))


class SelectionAnalyzer:
    """Loop callback recording information and diversity of each cycle's selection.

    After a cycle, the loop's model is still the one that made the selection,
    and the pool it selected from is the current unlabeled pool plus the
    selected samples; this callback scores that pool and writes
    ``subset_information`` (normalised), ``subset_information_raw`` and
    ``subset_diversity`` into ``record.extra`` (nothing for the last cycle, which
    selects nothing).  Pass it in ``ActiveLoop(..., callbacks=[SelectionAnalyzer()])``.

    Parameters
    ----------
    feature : str
        Model output the diversity is measured on (default the embeddings).
    metric : {"euclidean", "cosine"}
        Distance of the diversity.
    chunk_size : int
        Row block of the diversity computation.
    """

    def __init__(self, *, feature: str = "embeddings", metric: str = "euclidean", chunk_size: int = 1024) -> None:
        self.feature = feature
        self.metric = metric
        self.chunk_size = chunk_size

    def __call__(self, loop: "ActiveLoop", record: "CycleRecord") -> None:
        if not record.selected:
            return
        model, pools = loop.model, loop.pools
        selected = np.asarray(record.selected, dtype=np.int64)
        pool = np.union1d(pools.unlabeled, selected)
        if model.task == "classification":
            probs = model.outputs(pools, pool, "probs")["probs"]
            rows = np.searchsorted(pool, selected)
            record.extra["subset_information"] = subset_information(probs, rows)
            record.extra["subset_information_raw"] = subset_information(probs, rows, normalize=False)
        feats = model.outputs(pools, selected, self.feature)[self.feature]
        record.extra["subset_diversity"] = subset_diversity(feats, metric=self.metric, chunk_size=self.chunk_size)


def selection_table(runs: "dict[str, Sequence[History]]") -> str:
    """Markdown table of each strategy's mean subset information and diversity.

    The mean runs over every cycle that selected something (the cycles
    :class:`SelectionAnalyzer` scored) and over all trials; a strategy whose
    histories carry no analysis shows ``n/a``.

    Parameters
    ----------
    runs : dict of str to sequence of History
        Histories per strategy, as for :func:`activelearn.history.comparison_table`.
    """
    rows = ["| strategy | subset information | subset diversity |", "|---|---:|---:|"]
    for name, histories in runs.items():
        cells = []
        for key, fmt in (("subset_information", "{:.4f}"), ("subset_diversity", "{:.2f}")):
            values = np.concatenate([h.column(key) for h in histories]) if histories else np.array([])
            values = values[~np.isnan(values)]
            cells.append(fmt.format(values.mean()) if values.size else "n/a")
        rows.append(f"| {name} | {cells[0]} | {cells[1]} |")
    return "\n".join(rows)
