"""A small autoencoder trained on every pool sample (no labels), for latent distances.

Vector inputs get an MLP autoencoder, image inputs (``C x H x W``) a small
convolutional one.  Used by IBAL-D / Entropy-D for the distance score.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from ..pools import Pools

__all__ = ["build_autoencoder", "fit_autoencoder", "pool_latents"]


class _MLPAutoencoder(nn.Module):
    def __init__(self, in_features: int, latent: int, hidden: int = 64) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x.flatten(1))).view_as(x)


class _ConvAutoencoder(nn.Module):
    def __init__(self, shape: tuple[int, int, int], latent: int) -> None:
        super().__init__()
        c, h, w = shape
        self.shape = shape
        self.h4, self.w4 = math.ceil(h / 4), math.ceil(w / 4)
        self.encoder = nn.Sequential(
            nn.Conv2d(c, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(32 * self.h4 * self.w4, latent),
        )
        self.expand = nn.Linear(latent, 32 * self.h4 * self.w4)
        self.decoder = nn.Sequential(
            nn.ReLU(), nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(16, c, 4, stride=2, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.expand(self.encoder(x)).view(-1, 32, self.h4, self.w4)
        out = self.decoder(z)
        if out.shape[-2:] != x.shape[-2:]:
            out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return out


def build_autoencoder(input_shape: tuple[int, ...], latent_dim: int) -> nn.Module:
    """MLP autoencoder for vectors, convolutional for ``C x H x W`` images."""
    if len(input_shape) == 3:
        return _ConvAutoencoder(tuple(input_shape), latent_dim)  # type: ignore[arg-type]
    d = int(np.prod(input_shape))
    return _MLPAutoencoder(d, min(latent_dim, d))


def fit_autoencoder(
    pools: "Pools",
    *,
    latent_dim: int,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: torch.device,
) -> nn.Module:
    """Train on every pool sample (labeled or not; no labels used) with MSE reconstruction."""
    n = pools.n
    example = pools.inputs(np.arange(min(2, n)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ae = build_autoencoder(tuple(example.shape[1:]), latent_dim).to(device)
    opt = torch.optim.Adam(ae.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    ae.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen).numpy()
        for s in range(0, n, batch_size):
            x = pools.inputs(order[s : s + batch_size]).float().to(device)
            loss = F.mse_loss(ae(x), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    ae.eval()
    return ae


@torch.no_grad()
def pool_latents(ae: nn.Module, pools: "Pools", device: torch.device, batch_size: int = 1024) -> torch.Tensor:
    """Latent codes of every pool sample, in pool order (``N x latent``)."""
    parts = []
    for s in range(0, pools.n, batch_size):
        x = pools.inputs(np.arange(s, min(s + batch_size, pools.n))).float().to(device)
        parts.append(ae.get_submodule("encoder")(x.flatten(1) if isinstance(ae, _MLPAutoencoder) else x))
    return torch.cat(parts)
