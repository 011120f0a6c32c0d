"""Contrastive representation learning for open-set pools (SimCLR + SupCon).

The representation of Kim, Kim & Hwang: an encoder trained with the SimCLR
loss on pairs of augmented views of unlabeled samples plus the supervised
contrastive (SupCon) loss on labeled samples, where every labeled "not in
task" sample carries the extra class K+1; temperature 0.07; a projection head
(MLP) to 128-d, L2-normalised.  A classifier is then trained on the labeled
in-task samples with the labeled non-in-task samples undersampled as class
K+1: either the paper's fine-tuned one (:class:`FineTunedClassifier`: a copy
of the encoder plus an output linear layer, trained end to end with label
smoothing) or a linear probe on the frozen, L2-normalised pre-projection
features (:meth:`ContrastiveRepresentation.fit_classifier`).

Losses (Khosla et al. 2020, "L_out" form; Chen et al. 2020).  For unit rows
``z_1..z_M`` with labels ``y`` and temperature ``t``:

    L = mean over anchors i with |P(i)| > 0 of
        -1/|P(i)| * sum_{p in P(i)} log( exp(z_i.z_p / t) / sum_{a != i} exp(z_i.z_a / t) )

with ``P(i) = {p != i : y_p = y_i}``.  SimCLR (NT-Xent) is the special case in
which the only positive of a view is the other view of the same sample.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .exceptions import InvalidInputError

__all__ = ["supcon_loss", "simclr_loss", "random_affine", "augment", "make_encoder", "ContrastiveRepresentation", "FineTunedClassifier", "classifier_set"]


def supcon_loss(z: torch.Tensor, labels: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """Supervised contrastive loss over the rows of ``z`` (L2-normalised inside)."""
    if z.ndim != 2 or z.shape[0] != labels.shape[0]:
        raise InvalidInputError(f"z must be M x d with one label per row, got z {tuple(z.shape)} and labels {tuple(labels.shape)}")
    z = F.normalize(z.float(), dim=1)
    m = z.shape[0]
    logits = z @ z.T / temperature
    self_mask = torch.eye(m, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = (labels[:, None] == labels[None, :]) & ~self_mask
    n_pos = pos.sum(1)
    has = n_pos > 0
    if not bool(has.any()):
        return z.sum() * 0.0
    per_anchor = -(log_prob.masked_fill(~pos, 0.0)).sum(1)[has] / n_pos[has]
    return per_anchor.mean()


def simclr_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """NT-Xent over two views (row i of ``z1`` and of ``z2`` are the positives)."""
    n = z1.shape[0]
    ids = torch.arange(n, device=z1.device)
    return supcon_loss(torch.cat([z1, z2]), torch.cat([ids, ids]), temperature)


def random_affine(
    x: torch.Tensor,
    gen: torch.Generator,
    *,
    degrees: float = 15.0,
    shear: float = 15.0,
    scale: tuple[float, float] = (0.85, 1.15),
) -> torch.Tensor:
    """MNIST augmentation: a random rotation, shear and scale per image (B x C x H x W), batched."""
    b = x.shape[0]
    u = torch.rand(b, 4, generator=gen)
    rot = (u[:, 0] * 2 - 1) * math.radians(degrees)
    sh = (u[:, 1] * 2 - 1) * math.radians(shear)
    sc = scale[0] + u[:, 2] * (scale[1] - scale[0])
    cos, sin = torch.cos(rot), torch.sin(rot)
    # rotation @ shear(x) @ scale, inverted for the sampling grid
    a = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
    s = torch.stack([torch.stack([torch.ones(b), torch.tan(sh)], 1), torch.stack([torch.zeros(b), torch.ones(b)], 1)], 1)
    mat = a @ s * sc[:, None, None]
    inv = torch.linalg.inv(mat)
    theta = torch.cat([inv, torch.zeros(b, 2, 1)], 2).to(x.device, x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    background = x.amin(dim=(1, 2, 3), keepdim=True)
    out = F.grid_sample(x - background, grid, align_corners=False, padding_mode="zeros")
    return out + background


def augment(x: torch.Tensor, gen: torch.Generator, noise_std: float = 0.1) -> torch.Tensor:
    """Images (B x C x H x W): :func:`random_affine`; vectors: Gaussian noise scaled by each feature's batch std."""
    if x.ndim == 4:
        return random_affine(x, gen)
    flat = x.reshape(x.shape[0], -1)
    scale = flat.std(0, keepdim=True).clamp_min(1e-6) if flat.shape[0] > 1 else torch.ones_like(flat[:1])
    noise = torch.randn(flat.shape, generator=gen).to(x.device, x.dtype)
    return (flat + noise_std * scale * noise).reshape(x.shape)


def make_encoder(example: torch.Tensor, dim: int = 128, arch: str = "auto") -> nn.Module:
    """A small CNN (``arch="cnn"``, images C x H x W only) or an MLP on the flattened input (``"mlp"``); output size ``dim``.

    ``"auto"``: the CNN for images, the MLP otherwise.
    """
    if arch not in ("auto", "cnn", "mlp"):
        raise InvalidInputError(f"arch must be 'auto', 'cnn' or 'mlp', got {arch!r}")
    if arch == "cnn" and example.ndim != 3:
        raise InvalidInputError(f"arch='cnn' needs image inputs (C x H x W), got one of shape {tuple(example.shape)}; use 'mlp'")
    if example.ndim == 3 and arch != "mlp":
        c, h, w = example.shape
        return nn.Sequential(
            nn.Conv2d(c, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * (h // 4) * (w // 4), dim), nn.ReLU(),
        )
    d = int(example.numel())
    return nn.Sequential(nn.Flatten(), nn.Linear(d, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU())


def classifier_set(labeled: np.ndarray, labels: Any, rejected: np.ndarray, k: int, gen: torch.Generator) -> tuple[np.ndarray, torch.Tensor]:
    """The classifier's training set: ``labeled`` (with ``labels``) plus ``rejected`` as class ``k``.

    The rejected samples are undersampled to the mean in-task class count
    (``ceil(len(labeled) / distinct labels)``, at least 1): a random subset
    drawn with ``gen`` when there are more.  Returns (indices, targets).
    """
    lab, rej = np.asarray(labeled), np.asarray(rejected)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    cap = max(1, int(np.ceil(lab.size / max(1, np.unique(y.numpy()).size))))
    if rej.size > cap:
        rej = rej[torch.randperm(rej.size, generator=gen)[:cap].numpy()]
    return np.concatenate([lab, rej]), torch.cat([y, torch.full((rej.size,), int(k), dtype=torch.long)])


class ContrastiveRepresentation(nn.Module):
    """Encoder + projection head (to ``proj_dim``, normalised) + linear classifier (K+1 outputs).

    Built lazily from an example input and the number of task classes K.
    """

    def __init__(self, example: torch.Tensor, num_classes: int, *, rep_dim: int = 128, proj_dim: int = 128, arch: str = "auto") -> None:
        super().__init__()
        self.num_classes = int(num_classes)
        self.encoder = make_encoder(example, rep_dim, arch)
        self.projection = nn.Sequential(nn.Linear(rep_dim, rep_dim), nn.ReLU(), nn.Linear(rep_dim, proj_dim))
        self.classifier = nn.Linear(rep_dim, num_classes + 1)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.projection(self.encoder(x)), dim=1)

    def fit_contrastive(
        self,
        unlabeled: torch.Tensor | Any,
        labeled_x: Any,
        labeled_y: torch.Tensor,
        *,
        epochs: int,
        batch_size: int,
        lr: float,
        temperature: float,
        gen: torch.Generator,
        device: torch.device,
        inputs: Any,
    ) -> float:
        """SimCLR on ``unlabeled`` indices + SupCon on ``labeled_x`` indices with labels ``labeled_y``.

        One epoch is one pass over the unlabeled indices in batches of
        ``batch_size``; each step adds the SupCon loss of a random labeled batch
        of the same size.  ``inputs(idx)`` returns the input tensor of indices.
        Returns the last epoch's mean loss.
        """
        params = list(self.encoder.parameters()) + list(self.projection.parameters())
        opt = torch.optim.Adam(params, lr=lr)
        self.train()
        unl = np.asarray(unlabeled)
        lab = np.asarray(labeled_x)
        last = float("nan")
        for _ in range(epochs):
            perm = unl[torch.randperm(unl.size, generator=gen).numpy()] if unl.size else unl
            steps = max(1, math.ceil(unl.size / batch_size))
            total = 0.0
            for s in range(steps):
                loss = torch.zeros((), device=device)
                part = perm[s * batch_size : (s + 1) * batch_size]
                if part.size >= 2:
                    x = inputs(part).to(device)
                    loss = loss + simclr_loss(self.project(augment(x, gen)), self.project(augment(x, gen)), temperature)
                if lab.size >= 2:
                    pick = torch.randperm(lab.size, generator=gen)[:batch_size].numpy()
                    x = inputs(lab[pick]).to(device)
                    y = labeled_y[torch.from_numpy(pick)].to(device)
                    z = torch.cat([self.project(augment(x, gen)), self.project(augment(x, gen))])
                    loss = loss + supcon_loss(z, torch.cat([y, y]), temperature)
                if not loss.requires_grad:
                    continue
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach())
            last = total / steps
        self.eval()
        return last

    @torch.no_grad()
    def features(self, inputs: Any, indices: np.ndarray, device: torch.device, batch_size: int = 1024) -> torch.Tensor:
        """L2-normalised pre-projection features of ``indices`` (on ``device``)."""
        self.eval()
        out = [self.encoder(inputs(indices[s : s + batch_size]).to(device)) for s in range(0, len(indices), batch_size)]
        if not out:
            return torch.zeros(0, self.classifier.in_features, device=device)
        return F.normalize(torch.cat(out).float(), dim=1)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """The linear probe's argmax over the K task classes (normalised encoder features), on the CPU."""
        self.eval()
        device = next(self.parameters()).device
        out = []
        for s in range(0, len(x), batch_size):
            f = F.normalize(self.encoder(x[s : s + batch_size].to(device)).float(), dim=1)
            out.append(self.classifier(f)[:, : self.num_classes].argmax(1).cpu())
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)

    def fit_classifier(self, feats: torch.Tensor, y: torch.Tensor, *, steps: int = 300, lr: float = 1e-2) -> None:
        """Full-batch Adam on a fresh linear layer over frozen features (labels 0..K, K = not in task)."""
        nn.init.zeros_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)
        opt = torch.optim.Adam(self.classifier.parameters(), lr=lr)
        y = y.to(feats.device)
        for _ in range(steps):
            loss = F.cross_entropy(self.classifier(feats), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


class FineTunedClassifier(nn.Module):
    """A copy of a contrastive encoder plus a fresh output linear layer, fine-tuned end to end (Kim, Kim & Hwang).

    The paper fine-tunes "the classifier (representation + output linear
    layer)" for 100 epochs with Adam (lr 1e-3, weight decay 1e-6), batch 32
    and label smoothing 0.1.  Choices the paper leaves open, stated here:

    * the encoder is a deep copy (``copy.deepcopy``), so fine-tuning never
      changes the encoder it was copied from;
    * the linear layer reads the raw (pre-projection, not normalised) encoder
      output, as in the SupCon reference classifier; it has K+1 outputs and
      PyTorch's default initialisation, drawn under ``init_seed`` without
      touching the global RNG;
    * Adam's ``weight_decay`` is the L2 term added to the gradient (the paper
      says Adam, not AdamW) and applies to every parameter;
    * no augmentation (the paper mentions none for the classifier); every
      epoch is one pass over the training set in a fresh order drawn from
      ``gen``, the last batch may be smaller;
    * batch norm is in train mode while fine-tuning and in eval mode for
      :meth:`predict`.
    """

    def __init__(self, encoder: nn.Module, rep_dim: int, num_classes: int, *, init_seed: int = 0) -> None:
        super().__init__()
        self.num_classes = int(num_classes)
        self.encoder = copy.deepcopy(encoder)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(init_seed))
            self.head = nn.Linear(int(rep_dim), self.num_classes + 1)
        self.head.to(next(self.encoder.parameters()).device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits over the K task classes and the "not in task" class K+1."""
        return self.head(self.encoder(x).float())

    def fit(
        self,
        inputs: Any,
        indices: np.ndarray,
        targets: torch.Tensor,
        *,
        epochs: int,
        batch_size: int,
        lr: float,
        weight_decay: float,
        label_smoothing: float,
        gen: torch.Generator,
        device: torch.device,
    ) -> float:
        """Train on ``inputs(indices)`` with labels ``targets`` (0..K, K = not in task); returns the last epoch's mean loss."""
        idx = np.asarray(indices)
        if idx.size == 0:
            return float("nan")
        self.to(device).train()
        opt = torch.optim.Adam(self.parameters(), lr=lr, weight_decay=weight_decay)
        y_all = targets.to(device)
        last = float("nan")
        for _ in range(epochs):
            perm = torch.randperm(idx.size, generator=gen)
            total = 0.0
            for s in range(0, idx.size, batch_size):
                part = perm[s : s + batch_size]
                logits = self(inputs(idx[part.numpy()]).to(device))
                loss = F.cross_entropy(logits, y_all[part.to(device)], label_smoothing=label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * part.numel()
            last = total / idx.size
        self.eval()
        return last

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Argmax over the K task classes (the "not in task" output is left out), in eval mode, on the CPU."""
        self.eval()
        device = next(self.parameters()).device
        out = [self(x[s : s + batch_size].to(device))[:, : self.num_classes].argmax(1).cpu() for s in range(0, len(x), batch_size)]
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)
