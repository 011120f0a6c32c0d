"""Batched, seeded image augmentation that runs on the batch's device.

The trainer calls a transform with ``batched = True`` once per batch, after
the batch is on the model's device, as ``transform(x, generator=gen)``; any
other callable (a ``torchvision.transforms.v2`` pipeline, a function) is called
per sample on the host.  :class:`RandomCropFlip` is the CIFAR recipe
(zero-pad 4, random 32 x 32 crop, horizontal flip with probability 1/2) with
independent parameters per sample drawn from ``gen`` (a CPU generator, so the
draws, hence the training, are the same on CPU and GPU).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .exceptions import InvalidParameterError

__all__ = ["RandomCropFlip"]


class RandomCropFlip:
    """Pad by ``padding`` (zeros), crop back to the input size at a random offset, flip with probability ``flip``.

    Parameters
    ----------
    padding : int
        Pixels added on every side before cropping (CIFAR recipe: 4).
    flip : float
        Probability of a horizontal flip per sample (0 disables flipping).

    Notes
    -----
    Per sample ``i`` the offsets ``(dy_i, dx_i)`` are uniform in ``0..2 padding``
    and the crop is ``padded[i, :, dy_i : dy_i + H, dx_i : dx_i + W]``; gathered
    for the whole batch with one index operation, no Python loop over samples.
    """

    batched = True

    def __init__(self, padding: int = 4, flip: float = 0.5) -> None:
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise InvalidParameterError(f"padding must be an int >= 0, got {padding!r}")
        if not 0.0 <= float(flip) <= 1.0:
            raise InvalidParameterError(f"flip must be a probability in [0, 1], got {flip!r}")
        self.padding, self.flip = padding, float(flip)

    def __repr__(self) -> str:
        return f"RandomCropFlip(padding={self.padding}, flip={self.flip})"

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.dim() != 4:
            raise InvalidParameterError(f"RandomCropFlip needs a batch (B, C, H, W), got shape {tuple(x.shape)}")
        b, _, h, w = x.shape
        p = self.padding
        dy = torch.randint(0, 2 * p + 1, (b,), generator=generator)
        dx = torch.randint(0, 2 * p + 1, (b,), generator=generator)
        flips = torch.rand(b, generator=generator) < self.flip
        if p:
            x = F.pad(x, (p, p, p, p))
        rows = (dy[:, None] + torch.arange(h)[None]).to(x.device)  # B x H
        cols = (dx[:, None] + torch.arange(w)[None])  # B x W
        cols = torch.where(flips[:, None], cols.flip(1), cols).to(x.device)
        bi = torch.arange(b, device=x.device)[:, None, None]
        out = x.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]]  # B x H x W x C
        return out.permute(0, 3, 1, 2).contiguous()
