"""What the loop checks of a strategy's selection: unique ints, all unlabeled, exactly the budget."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import as_integral_indices
from .exceptions import SelectionError
from .oracle import Query
from .pools import Pools

__all__ = ["validate_selection"]


def validate_selection(selection: Any, pools: Pools, budget: int) -> np.ndarray | Query:
    """Check what a strategy returned: unique ints, all unlabeled, exactly the budget.

    A plain selection is an index array of ``min(budget, pools.n_unlabeled)``
    entries.  A :class:`Query` (samples plus clusters) must make exactly that
    many interactions (``len(indices) + len(groups)``), with non-empty groups,
    and every index it touches unlabeled and touched once.  Returns the int64
    array, or the Query with int64 arrays.
    """
    if isinstance(selection, Query):
        indices = _index_array(selection.indices, "query indices")
        groups = tuple(_index_array(g, "a query group") for g in selection.groups)
        if any(g.size == 0 for g in groups):
            raise SelectionError("a query group (cluster) is empty; every cluster needs at least one member")
        n_inter = indices.size + len(groups)
        expected = min(budget, pools.n_unlabeled)
        if n_inter != expected:
            raise SelectionError(f"the strategy asked for {n_inter} interactions ({indices.size} samples + {len(groups)} clusters), expected exactly {expected}")
        _check_unique_unlabeled(np.concatenate([indices, *groups]), pools)
        return Query(indices=indices, groups=groups, cycle=selection.cycle)
    arr = _index_array(selection, "a selection")
    expected = min(budget, pools.n_unlabeled)
    if arr.size != expected:
        raise SelectionError(f"the strategy returned {arr.size} indices, expected exactly {expected}")
    _check_unique_unlabeled(arr, pools)
    return arr


def _index_array(selection: Any, what: str) -> np.ndarray:
    return as_integral_indices(selection, what, error=SelectionError)  # floats only when integral, never truncated


def _check_unique_unlabeled(arr: np.ndarray, pools: Pools) -> None:
    uniq, counts = np.unique(arr, return_counts=True)
    if uniq.size != arr.size:
        raise SelectionError(f"duplicate indices detected in the selection: {uniq[counts > 1][:5].tolist()}")
    if arr.size and (arr.min() < 0 or arr.max() >= pools.n):
        raise SelectionError(f"selected indices must lie in [0, {pools.n}), got {arr.min()}..{arr.max()}")
    not_unlabeled = arr[~pools.unlabeled_mask[arr]]
    if not_unlabeled.size:
        raise SelectionError(f"{not_unlabeled.size} selected indices are not in the unlabeled pool, e.g. {not_unlabeled[:5].tolist()}")
