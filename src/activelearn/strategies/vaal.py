"""VAAL: Variational Adversarial Active Learning (Sinha, Ebrahimi & Darrell, ICCV 2019)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np

from ..extensions.vaal import VAALModule
from .base import ScoreStrategy, nonnegative_real, positive_int, positive_real
from .registry import register

if TYPE_CHECKING:
    from ..model import ALModel, ModelExtension
    from ..pools import Pools

__all__ = ["VAAL"]


@register("vaal")
class VAAL(ScoreStrategy):
    """Pick the unlabeled samples the discriminator scores least likely to be labeled.

    The strategy attaches a :class:`~activelearn.extensions.VAALModule` (a VAE
    and a discriminator on its latent means, trained on labeled and unlabeled
    batches at every trainer step through the extension point) and scores each
    candidate by ``-D(mu(x))``, so the top ``budget`` scores are the lowest
    discriminator probabilities (the official sampler's ``topk`` of the negated
    predictions).  The task model is trained as usual and plays no part in the
    score.  See :mod:`activelearn.extensions.vaal` for the hyperparameters
    (official code: latent 32, beta 1, adversary weight 1, Adam 5e-4, 2 VAE
    and 1 discriminator steps) and what we changed (an MLP VAE on flattened
    inputs of any shape instead of the convolutional one; the paper's VAE
    adversarial targets).

    Parameters
    ----------
    latent_dim, hidden, disc_hidden, beta, adversary_weight, lr, vae_steps, adv_steps
        Passed to :class:`~activelearn.extensions.VAALModule`.
    subset : int or None
        Score a seeded random subset of the unlabeled pool (None: all, as the paper).
    seed : int, optional
        Seeds the subset.  The networks' initialisation and the unlabeled
        batches come from the model's and the trainer's seeds.
    """

    requires = frozenset({"vaal_labeled_prob"})
    _constraints: ClassVar[dict[str, Callable[[str, Any], None]]] = {
        "latent_dim": positive_int, "hidden": positive_int, "disc_hidden": positive_int,
        "vae_steps": positive_int, "adv_steps": positive_int,
        "beta": nonnegative_real, "adversary_weight": nonnegative_real, "lr": positive_real,
    }

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
        subset: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(subset=subset, seed=seed)
        self.latent_dim, self.hidden, self.disc_hidden = latent_dim, hidden, disc_hidden
        self.beta, self.adversary_weight, self.lr = beta, adversary_weight, lr
        self.vae_steps, self.adv_steps = vae_steps, adv_steps

    def model_extensions(self) -> list["ModelExtension"]:
        self.validate_params()
        return [VAALModule(
            latent_dim=self.latent_dim, hidden=self.hidden, disc_hidden=self.disc_hidden, beta=self.beta,
            adversary_weight=self.adversary_weight, lr=self.lr, vae_steps=self.vae_steps, adv_steps=self.adv_steps,
        )]

    def score(self, model: "ALModel", pools: "Pools", indices: np.ndarray) -> np.ndarray:
        """``-P(labeled)`` per index: the least likely labeled rank first."""
        p = model.outputs(pools, indices, "vaal_labeled_prob")["vaal_labeled_prob"]
        return -p.double().reshape(-1).cpu().numpy()
