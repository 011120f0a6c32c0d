"""The batches a training run draws: labeled mini-batches per epoch, the unlabeled stream, augmentation.

Everything is seeded from ``TrainConfig.seed`` and the cycle through explicit
``torch.Generator`` objects; the global RNG is never touched.  In a
``torch.distributed`` run every rank draws the same global batches (same
generators) and keeps its contiguous slice (:func:`activelearn.steps.rank_slice`);
augmentation is applied to the whole global batch before slicing, so each
sample gets the transform it gets in one process.
"""

from __future__ import annotations

import inspect
from typing import Callable, Iterator

import numpy as np
import torch

from . import distributed as D
from .pools import Pools

__all__ = ["augment", "UnlabeledBatches", "LabeledBatches"]

Transform = Callable[..., torch.Tensor]


def augment(transform: Transform | None, x: torch.Tensor, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """The batch on ``device``, augmented by ``transform`` when there is one.

    A transform with ``batched = True`` (e.g. :class:`activelearn.augment.RandomCropFlip`)
    is called once on the whole batch after the copy to ``device``; any other
    transform is called per sample on the host, given ``generator=gen`` when it
    takes one (then it never draws from the global RNG).
    """
    if transform is None:
        return x.to(device, non_blocking=True)
    if getattr(transform, "batched", False):
        return transform(x.to(device, non_blocking=True), generator=gen)
    try:
        takes_gen = "generator" in inspect.signature(transform).parameters
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        takes_gen = False
    return torch.stack([transform(xi, generator=gen) if takes_gen else transform(xi) for xi in x]).to(device, non_blocking=True)


def _slice_inputs(x: torch.Tensor, transform: Transform | None, gen: torch.Generator, keep: slice, device: torch.device) -> torch.Tensor:
    """``x[keep]`` on ``device``; with a transform the whole of ``x`` is augmented first (same draws as one process)."""
    if transform is None:
        return x[keep].to(device, non_blocking=True)
    return augment(transform, x, gen, device)[keep] if len(x) else x[keep].to(device)


class UnlabeledBatches:
    """Seeded unlabeled batches for extensions with ``uses_unlabeled``: a walk through permutations of the pool.

    The generator is seeded from ``(TrainConfig.seed, cycle, 1)``, independent of
    the labeled shuffling, so attaching such an extension does not change the
    labeled batches.  Each step takes the next ``batch_size`` samples of the
    current permutation (a new permutation when it runs out), as cycling a
    shuffled unlabeled loader does.  In a distributed run every rank draws the
    same batch and keeps its contiguous slice.
    """

    def __init__(self, pools: Pools, batch_size: int, seed: int, cycle: int) -> None:
        self.pools = pools
        self.pool = pools.unlabeled
        self.size = min(batch_size, self.pool.size)
        s = int(np.random.SeedSequence([seed, cycle, 1]).generate_state(1)[0])
        self.gen = torch.Generator().manual_seed(s)
        self.aug_gen = torch.Generator().manual_seed(s + 1)
        self.order = np.zeros(0, dtype=np.int64)
        self.pos = 0

    def next(self, transform: Transform | None, device: torch.device) -> tuple[np.ndarray | None, torch.Tensor | None]:
        """The next (indices, inputs on ``device``) of this rank, or (None, None) when the unlabeled pool is empty."""
        if self.size == 0:
            return None, None
        if self.pos + self.size > self.order.size:
            self.order = self.pool[torch.randperm(self.pool.size, generator=self.gen).numpy()]
            self.pos = 0
        rows = self.order[self.pos : self.pos + self.size]
        self.pos += self.size
        keep = slice(*D.shard_range(rows.size)) if D.is_distributed() else slice(None)
        x = _slice_inputs(self.pools.inputs(rows), transform, self.aug_gen, keep, device)
        return rows[keep], x


class LabeledBatches:
    """The labeled mini-batches of one ``fit``: a seeded permutation per epoch, cut into global batches.

    Parameters
    ----------
    indices : numpy.ndarray
        Pool indices of the training set (labeled, plus rejected ones with open set).
    batch_size, drop_last : int, bool
        ``TrainConfig`` fields; the last incomplete batch is dropped with
        ``drop_last`` (unless it is the only one).
    has_batchnorm : bool
        A one-sample batch is skipped (batch-norm cannot train on it).
    gen : torch.Generator
        Draws each epoch's permutation.
    """

    def __init__(self, indices: np.ndarray, batch_size: int, drop_last: bool, has_batchnorm: bool, gen: torch.Generator) -> None:
        self.indices = indices
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.has_batchnorm = has_batchnorm
        self.gen = gen

    def epoch(self) -> Iterator[np.ndarray]:
        """Positions (into ``indices``) of every global batch of the next epoch; the same on every rank."""
        n, bs = self.indices.size, self.batch_size
        perm = torch.randperm(n, generator=self.gen).numpy()
        for s in range(0, n, bs):
            part = perm[s : s + bs]
            if self.drop_last and part.size < bs and n > bs:
                return
            if part.size == 1 and n > 1 and self.has_batchnorm:
                continue  # batch-norm cannot train on a single sample
            yield part

    def reader(self, pools: Pools, parts: list[np.ndarray], seed: int) -> Iterator[torch.Tensor]:
        """The inputs of each global batch ``parts[i]`` (positions into ``indices``), read by ``pools.batches``.

        ``seed`` seeds a Dataset pool's own augmentations for this epoch.
        """
        return pools.batches([self.indices[p] for p in parts], seed=seed)

    @staticmethod
    def rank_inputs(x: torch.Tensor, transform: Transform | None, gen: torch.Generator, keep: slice, device: torch.device) -> torch.Tensor:
        """This rank's inputs ``x[keep]`` of a global batch ``x``, augmented as in one process, on ``device``."""
        return _slice_inputs(x, transform, gen, keep, device)
