"""Cached model outputs over pools: rows computed once per model version.

:class:`OutputCache` keeps, per ``(pools.uid, output name)``, a tensor with one
row per pool sample and a mask of the rows computed so far; it is emptied
whenever the model's version changes (training, reset, attach), so two
strategies asking for the same outputs in one cycle compute them once.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

__all__ = ["OutputCache"]


class OutputCache:
    """Rows of named outputs per pool, valid for one model version.

    Parameters
    ----------
    device : torch.device
        Where the cached rows live (the model's device).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._entries: dict[tuple[int, str], tuple[torch.Tensor, np.ndarray]] = {}
        self._version = -1

    def sync(self, version: int) -> None:
        """Drop every row if the model changed since the rows were computed."""
        if version != self._version:
            self._entries.clear()
            self._version = version

    def clear(self) -> None:
        """Drop every cached row (the next call recomputes them)."""
        self._entries.clear()

    def computed(self, pools: Any) -> dict[str, np.ndarray]:
        """Per output name, a copy of the mask of ``pools`` rows cached now."""
        return {name: mask.copy() for (uid, name), (_, mask) in self._entries.items() if uid == pools.uid}

    def missing(self, pools: Any, idx: np.ndarray, name: str) -> np.ndarray:
        """The entries of ``idx`` whose ``name`` output is not cached."""
        entry = self._entries.get((pools.uid, name))
        return idx if entry is None else idx[~entry[1][idx]]

    def store(self, pools: Any, rows: np.ndarray, res: dict[str, torch.Tensor]) -> None:
        """Put computed outputs for ``rows`` (one row of each tensor per entry) into the cache."""
        for name, v in res.items():
            key = (pools.uid, name)
            if key not in self._entries:
                store = torch.zeros((pools.n, *v.shape[1:]), dtype=v.dtype, device=self.device)
                self._entries[key] = (store, np.zeros(pools.n, dtype=bool))
            store, mask = self._entries[key]
            store[torch.from_numpy(np.ascontiguousarray(rows)).to(self.device)] = v
            mask[rows] = True

    def take(self, pools: Any, idx: np.ndarray, names: Sequence[str]) -> dict[str, torch.Tensor]:
        """Cached outputs for ``idx`` (every row must be cached), in the order of ``idx``."""
        sel = torch.from_numpy(idx).to(self.device)
        return {n: self._entries[(pools.uid, n)][0][sel] for n in names}

    def merge(self, pools: Any, idx: np.ndarray, name: str, todo: np.ndarray, computed: torch.Tensor) -> torch.Tensor:
        """Output ``name`` for ``idx``: cached rows, the others from ``computed`` (rows of the sorted ``todo``), not cached."""
        entry = self._entries.get((pools.uid, name))
        sel = torch.from_numpy(idx).to(self.device)
        if entry is None:
            base = torch.zeros((idx.size, *computed.shape[1:]), dtype=computed.dtype, device=self.device)
            miss = np.ones(idx.size, dtype=bool)
        else:
            base, miss = entry[0][sel], ~entry[1][idx]
        pos = torch.from_numpy(np.searchsorted(todo, idx[miss])).to(self.device)
        base[torch.from_numpy(np.flatnonzero(miss)).to(self.device)] = computed[pos]
        return base
