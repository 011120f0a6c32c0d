"""VAAL's VAE and discriminator (Sinha, Ebrahimi & Darrell, ICCV 2019), trained through the extension point.

A beta-VAE maps every input to a latent mean ``mu``; a discriminator on ``mu``
learns to tell labeled from unlabeled samples, while the VAE, besides
reconstructing both, learns to make the discriminator call every sample
labeled.  Selection takes the unlabeled samples the discriminator scores least
likely to be labeled (:class:`activelearn.strategies.VAAL`).

Both networks train alongside the task model: at every trainer step this
extension (``uses_unlabeled = True``) receives the labeled batch and a seeded
unlabeled batch, takes ``vae_steps`` Adam steps on the VAE and ``adv_steps`` on
the discriminator with its own optimisers, and adds nothing to the task loss.
Their gradients never reach the task model (VAAL's task model is independent
of the VAE), and the trainer clears the gradients before the main backward
pass, so the main optimiser skips these parameters.

Hyperparameters follow the official code (``sinhasam/vaal``): latent size 32,
``beta = 1`` with the KL divergence summed over batch and latent dimensions and
the reconstruction MSE averaged, adversary weight 1, Adam lr 5e-4 for both
networks, 2 VAE steps and 1 discriminator step per iteration, a discriminator
``z -> 512 -> 512 -> 1`` with ReLU.  What we changed:

* the official VAE is convolutional for 32x32 (and 64x64) images with 128 to
  1024 channels; ours is an MLP on the flattened input (``D -> hidden ->
  hidden -> 2 x latent`` and back, ``hidden = 256``), so it takes any input
  shape (vectors and images alike) and stays small for small inputs;
* the VAE's adversarial term follows the paper (the VAE wants the
  discriminator to say "labeled" for labeled *and* unlabeled latents,
  targets 1 and 1); the official code's VAE step uses targets 1 and 0, i.e.
  the discriminator's own objective;
* the official code draws fresh batches for the second VAE step; we reuse the
  step's batches (one labeled and one unlabeled batch per trainer step);
* the optimisers are re-created at the first step of every ``Trainer.fit``
  (the official code builds new networks and optimisers each cycle; the
  networks are re-initialised by ``reset_parameters`` when
  ``TrainConfig.from_scratch``);
* the discriminator outputs a logit (BCE with logits; ``sigmoid`` of it is the
  served probability), which is the same model, numerically safer;
* the log-variance is clamped to [-30, 20], so that inputs of large scale
  (features around 1e6) cannot overflow ``exp(logvar)`` into NaN scores.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..exceptions import InvalidParameterError
from ..model import BuildContext, ForwardOutput, ModelExtension, StepContext

__all__ = ["VAALModule"]


class VAALModule(ModelExtension):
    """VAE plus discriminator on its latent means; serves ``"vaal_labeled_prob"``.

    Parameters
    ----------
    latent_dim : int, default 32
        VAE latent size (official code: 32).
    hidden : int, default 256
        Width of the MLP encoder and decoder (ours; the official VAE is convolutional).
    disc_hidden : int, default 512
        Width of the discriminator's two hidden layers (official: 512).
    beta : float, default 1.0
        Weight of the KL term (official: 1).
    adversary_weight : float, default 1.0
        Weight of the VAE's adversarial loss (official ``adversary_param``: 1).
    lr : float, default 5e-4
        Adam learning rate of both networks (official: 5e-4).
    vae_steps, adv_steps : int, default 2 and 1
        Optimiser steps per trainer step (official: 2 and 1).
    """

    name = "vaal"
    provides = ("vaal_labeled_prob",)
    uses_unlabeled = True
    trains_itself = True  # steps its own optimisers in step_loss (kept out of DDP, see activelearn.steps)

    def __init__(
        self,
        *,
        latent_dim: int = 32,
        hidden: int = 256,
        disc_hidden: int = 512,
        beta: float = 1.0,
        adversary_weight: float = 1.0,
        lr: float = 5e-4,
        vae_steps: int = 2,
        adv_steps: int = 1,
    ) -> None:
        super().__init__()
        for pname, v in (("latent_dim", latent_dim), ("hidden", hidden), ("disc_hidden", disc_hidden), ("vae_steps", vae_steps), ("adv_steps", adv_steps)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise InvalidParameterError(f"{pname} must be a positive int, got {v!r}")
        for pname, f in (("beta", beta), ("adversary_weight", adversary_weight), ("lr", lr)):
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not f >= 0 or (pname == "lr" and f == 0):
                raise InvalidParameterError(f"{pname} must be a non-negative number (lr > 0), got {f!r}")
        self.latent_dim, self.hidden, self.disc_hidden = latent_dim, hidden, disc_hidden
        self.beta, self.adversary_weight, self.lr = float(beta), float(adversary_weight), float(lr)
        self.vae_steps, self.adv_steps = vae_steps, adv_steps
        self.encoder: nn.Module | None = None
        self.decoder: nn.Module | None = None
        self.discriminator: nn.Module | None = None
        self._opts: tuple[torch.optim.Optimizer, torch.optim.Optimizer] | None = None

    def build_from(self, ctx: BuildContext) -> None:
        """MLP encoder/decoder for ``prod(input_shape)`` features and the discriminator."""
        d, h, z = math.prod(ctx.input_shape), self.hidden, self.latent_dim
        self.input_shape = tuple(ctx.input_shape)
        self.encoder = nn.Sequential(nn.Flatten(1), nn.Linear(d, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 2 * z))
        self.decoder = nn.Sequential(nn.Linear(z, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, d))
        k = self.disc_hidden
        self.discriminator = nn.Sequential(nn.Linear(z, k), nn.ReLU(), nn.Linear(k, k), nn.ReLU(), nn.Linear(k, 1))

    def _nets(self) -> tuple[nn.Module, nn.Module, nn.Module]:
        if self.encoder is None or self.decoder is None or self.discriminator is None:
            raise InvalidParameterError("the VAAL module is not built yet; attach it to an ALModel first")
        return self.encoder, self.decoder, self.discriminator

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent mean and log-variance (clamped to [-30, 20]), each ``B x latent_dim``."""
        mu, logvar = self._nets()[0](x.float()).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def vae_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(MSE(recon, x) + beta * KL, mu)`` with the reparameterised sample."""
        mu, logvar = self.encode(x)
        zs = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        recon = self._nets()[1](zs)
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return F.mse_loss(recon, x.float().flatten(1)) + self.beta * kld, mu

    def labeled_logit(self, mu: torch.Tensor) -> torch.Tensor:
        """The discriminator's logit that a latent mean comes from a labeled sample, shape ``(B,)``."""
        return self._nets()[2](mu).squeeze(1)

    def step_loss(self, ctx: StepContext) -> torch.Tensor | None:
        """VAE and discriminator steps on the labeled and unlabeled batches; adds nothing to the task loss."""
        if ctx.unlabeled_inputs is None or len(ctx.unlabeled_inputs) == 0:
            return None
        if ctx.step == 0 or self._opts is None:
            enc, dec, disc = self._nets()
            vae_params = list(enc.parameters()) + list(dec.parameters())
            self._opts = (torch.optim.Adam(vae_params, lr=self.lr), torch.optim.Adam(disc.parameters(), lr=self.lr))
        opt_vae, opt_disc = self._opts
        xl, xu = ctx.inputs.detach(), ctx.unlabeled_inputs.detach()
        dev = xl.device.type
        with torch.enable_grad(), torch.autocast(dev, enabled=False):
            for _ in range(self.vae_steps):
                loss_l, mu_l = self.vae_loss(xl)
                loss_u, mu_u = self.vae_loss(xu)
                logits = torch.cat([self.labeled_logit(mu_l), self.labeled_logit(mu_u)])
                adv = F.binary_cross_entropy_with_logits(logits[: len(xl)], torch.ones(len(xl), device=logits.device)) + \
                    F.binary_cross_entropy_with_logits(logits[len(xl):], torch.ones(len(xu), device=logits.device))
                opt_vae.zero_grad(set_to_none=True)
                (loss_l + loss_u + self.adversary_weight * adv).backward()
                opt_vae.step()
            for _ in range(self.adv_steps):
                with torch.no_grad():
                    mu_l, mu_u = self.encode(xl)[0], self.encode(xu)[0]
                dl, du = self.labeled_logit(mu_l), self.labeled_logit(mu_u)
                loss = F.binary_cross_entropy_with_logits(dl, torch.ones_like(dl)) + F.binary_cross_entropy_with_logits(du, torch.zeros_like(du))
                opt_disc.zero_grad(set_to_none=True)
                loss.backward()
                opt_disc.step()
        opt_vae.zero_grad(set_to_none=True)
        opt_disc.zero_grad(set_to_none=True)
        return None

    def infer_with(self, out: ForwardOutput, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """``sigmoid(discriminator(mu(x)))``: probability that each input is labeled."""
        return {"vaal_labeled_prob": torch.sigmoid(self.labeled_logit(self.encode(inputs)[0]))}
