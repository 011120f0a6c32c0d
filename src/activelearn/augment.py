"""Seeded image augmentation that runs batched on the batch's device.

The trainer calls a transform with ``batched = True`` once per batch, after the
batch is on the model's device, as ``transform(x, generator=gen)``; any other
callable (a ``torchvision.transforms.v2`` pipeline, a function) is called per
sample on the host.  :class:`RandomCropFlip` is the CIFAR recipe (pad 4, random
32 x 32 crop, horizontal flip with probability 1/2): its random draws come from
``gen`` (a CPU generator, so the augmentation, hence the training, is the same
on CPU and GPU), the crop of the whole batch is one gather.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

from .exceptions import InvalidInputError, InvalidParameterError

__all__ = ["RandomCropFlip"]


class RandomCropFlip:
    """Random crop with padding plus random horizontal flip, per sample, for a CHW image or an NCHW batch.

    The standard CIFAR augmentation (``RandomCrop(32, padding=4)`` then
    ``RandomHorizontalFlip()``), written with torch ops so that it runs on
    already-normalised tensors without PIL, on any device.

    Parameters
    ----------
    size : int, default 32
        Side of the square output crop.
    padding : int, default 4
        Pixels added on each border before cropping.
    flip_p : float, default 0.5
        Probability of a horizontal flip.
    fill : float or sequence of float, default 0.0
        Value of the padded pixels, one per channel or a scalar.  To reproduce
        black padding applied before normalisation, pass ``-mean / std`` per
        channel (what :func:`activelearn.datasets.cifar10` does).

    Notes
    -----
    Randomness comes from the ``generator`` passed to the call
    (``transform(x, generator=g)``); :class:`~activelearn.trainer.Trainer` passes
    one seeded from its own generator, so augmentation never draws from (or
    advances) torch's global RNG.  Called without one, it falls back to the global
    RNG, like torchvision's transforms.  Per sample, in batch order, the draws are
    the crop's top row, its left column and (when ``flip_p > 0``) the flip, so a
    batch gives exactly the samples' one-by-one results; the crops themselves are
    gathered for the whole batch at once (``batched = True``: the trainer calls it
    once per batch, on the training device).  Instances are picklable (usable in
    DataLoader workers).
    """

    batched = True

    def __init__(
        self,
        size: int = 32,
        padding: int = 4,
        flip_p: float = 0.5,
        fill: float | Sequence[float] = 0.0,
    ) -> None:
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise InvalidParameterError(f"size must be a positive int, got {size!r}")
        if isinstance(padding, bool) or not isinstance(padding, numbers.Integral) or padding < 0:
            raise InvalidParameterError(f"padding must be a non-negative int, got {padding!r}")
        if isinstance(flip_p, bool) or not isinstance(flip_p, numbers.Real) or not 0.0 <= flip_p <= 1.0:
            raise InvalidParameterError(f"flip_p must be a number in [0, 1], got {flip_p!r}")
        self.size: int = int(size)
        self.padding: int = int(padding)
        self.flip_p: float = float(flip_p)
        self.fill: tuple[float, ...] | float = tuple(float(v) for v in fill) if isinstance(fill, Sequence) else float(fill)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Return an augmented copy of ``x`` (shape ``(C, H, W)`` or ``(N, C, H, W)``)."""
        if not isinstance(x, torch.Tensor) or x.ndim not in (3, 4):
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise InvalidInputError(f"RandomCropFlip expects a (C, H, W) or (N, C, H, W) tensor, got {got}")
        batch = x if x.ndim == 4 else x.unsqueeze(0)
        padded = self._pad(batch)
        n, s = batch.shape[0], self.size
        top, left, flip = self._draws(n, padded.shape[2] - s + 1, padded.shape[3] - s + 1, generator)
        rows = (top[:, None] + torch.arange(s)[None]).to(x.device)  # N x s
        cols = left[:, None] + torch.arange(s)[None]
        cols = torch.where(flip[:, None], cols.flip(1), cols).to(x.device)  # a flip reverses the crop's columns
        out = padded[torch.arange(n, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
        out = out.permute(0, 3, 1, 2).contiguous()  # advanced indexing put the channels last
        return out if x.ndim == 4 else out[0]

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        p = self.padding
        if h + 2 * p < self.size or w + 2 * p < self.size:
            raise InvalidInputError(f"cannot crop {self.size}x{self.size} from a {h}x{w} image padded by {p}")
        fill = self.fill
        if isinstance(fill, tuple) and len(fill) != c:
            raise InvalidInputError(f"fill has {len(fill)} values but the image has {c} channels")
        values = torch.tensor(fill if isinstance(fill, tuple) else (fill,) * c, dtype=x.dtype, device=x.device)
        padded = values.view(1, c, 1, 1).expand(n, c, h + 2 * p, w + 2 * p).clone()
        padded[:, :, p : p + h, p : p + w] = x
        return padded

    def _draws(self, n: int, tops: int, lefts: int, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per sample, in order: top, left, flip (the flip drawn only when ``flip_p > 0``)."""
        top, left, flip = torch.empty(n, dtype=torch.long), torch.empty(n, dtype=torch.long), torch.zeros(n, dtype=torch.bool)
        for i in range(n):
            top[i] = torch.randint(0, tops, (1,), generator=generator)
            left[i] = torch.randint(0, lefts, (1,), generator=generator)
            if self.flip_p > 0:
                flip[i] = float(torch.rand((), generator=generator)) < self.flip_p
        return top, left, flip

    def __repr__(self) -> str:
        return f"RandomCropFlip(size={self.size}, padding={self.padding}, flip_p={self.flip_p})"
