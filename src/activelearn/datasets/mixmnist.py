"""MixMNIST (Kim, Kim & Hwang): an open-set pool of MNIST digits, ambiguous digits and notMNIST letters.

Recipe of the ambiguous digits (the paper's, at a small scale, trained here):

1. a small VAE (MLP 784-400-``latent``-400-784, Bernoulli decoder) is trained
   on MNIST train;
2. ten small classifiers (MLP 784-128-10, each with its own seed and its own
   random half of MNIST train) are trained;
3. pairs of MNIST training digits of *different* classes are drawn; their
   latent means are mixed 7:3 (``mix``) and decoded;
4. a decoded image is kept when the ten classifiers disagree: 2 or 3 distinct
   predicted classes (``disagreement``).

Everything is seeded.  The ambiguous images are cached on disk after the
first build (``cache_dir``, default ``$ACTIVELEARN_CACHE/mixmnist`` or
``~/.cache/activelearn/mixmnist``), keyed by every recipe parameter and the
seed (a cached set of N images serves any request for n <= N: candidates
come in a fixed seeded stream, so the first n are the same).  The full default build takes about a minute or two on a 2-core CPU.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_fraction, check_nonnegative_int, check_positive_int
from ..exceptions import InvalidInputError, InvalidParameterError
from .base import DatasetBundle
from .mnist import MNIST_MEAN, MNIST_STD, _load_raw_mnist, _normalise, notmnist

__all__ = ["mix_mnist", "ambiguous_digits", "default_cache_dir"]

IN_TASK, AMBIGUOUS, OOD = 0, 1, 2


def default_cache_dir() -> Path:
    """``$ACTIVELEARN_CACHE/mixmnist``, else ``~/.cache/activelearn/mixmnist``."""
    base = os.environ.get("ACTIVELEARN_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "activelearn") / "mixmnist"


class _VAE(nn.Module):
    def __init__(self, latent: int) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(784, 400), nn.ReLU())
        self.mu, self.logvar = nn.Linear(400, latent), nn.Linear(400, latent)
        self.dec = nn.Sequential(nn.Linear(latent, 400), nn.ReLU(), nn.Linear(400, 784))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.enc(x)
        return self.mu(h), self.logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.dec(z))


def _train_vae(x: torch.Tensor, latent: int, epochs: int, gen: torch.Generator) -> _VAE:
    vae = _VAE(latent)
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for s in range(0, len(x), 128):
            xb = x[perm[s : s + 128]]
            mu, logvar = vae.encode(xb)
            z = mu + torch.randn(mu.shape, generator=gen) * (0.5 * logvar).exp()
            logits = vae.dec(z)
            rec = F.binary_cross_entropy_with_logits(logits, xb, reduction="sum")
            kld = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum()
            loss = (rec + kld) / len(xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return vae.eval()


def _train_classifiers(x: torch.Tensor, y: torch.Tensor, count: int, size: int, epochs: int, gen: torch.Generator) -> list[nn.Module]:
    nets: list[nn.Module] = []
    for _ in range(count):
        torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=gen)))
        net = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
        sub = torch.randperm(len(x), generator=gen)[:size]
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        for _ in range(epochs):
            perm = sub[torch.randperm(len(sub), generator=gen)]
            for s in range(0, len(perm), 64):
                b = perm[s : s + 64]
                loss = F.cross_entropy(net(x[b]), y[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
        nets.append(net.eval())
    return nets


def ambiguous_digits(
    images: torch.Tensor,
    labels: torch.Tensor,
    count: int,
    *,
    mix: float = 0.7,
    disagreement: tuple[int, int] = (2, 3),
    latent: int = 16,
    vae_epochs: int = 10,
    vae_train_size: int | None = None,
    n_classifiers: int = 10,
    clf_epochs: int = 2,
    clf_train_size: int = 30_000,
    batch: int = 4096,
    max_rounds: int = 200,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Generate ``count`` ambiguous digits by the paper's recipe (see the module docstring).

    Parameters
    ----------
    images, labels : uint8 N x 28 x 28 MNIST training images and their digits.
    count : int
        How many ambiguous images to keep.
    mix : float
        Weight of the first digit's latent vector (0.7 for the paper's 7:3).
    disagreement : (low, high)
        Keep an image when the number of distinct predictions of the
        classifiers lies in ``[low, high]``.

    Returns
    -------
    dict with ``images`` (uint8 count x 28 x 28), ``major`` / ``minor`` (the
    digits mixed 7 : 3), ``distinct`` (distinct predictions), ``tried``
    (decoded candidates in total, a 0-dim tensor).
    """
    check_nonnegative_int("count", count)
    check_fraction("mix", mix)
    lo, hi = disagreement
    if not (1 <= lo <= hi <= n_classifiers):
        raise InvalidParameterError(f"disagreement must be (low, high) with 1 <= low <= high <= {n_classifiers}, got {disagreement!r}")
    x = images.reshape(len(images), -1).float() / 255.0
    y = labels.long()
    with torch.random.fork_rng(devices=[]):
        gen = torch.Generator().manual_seed(int(seed))
        torch.manual_seed(int(seed))
        vx = x if vae_train_size is None else x[torch.randperm(len(x), generator=gen)[:vae_train_size]]
        vae = _train_vae(vx, latent, vae_epochs, gen)
        nets = _train_classifiers(x, y, n_classifiers, min(clf_train_size, len(x)), clf_epochs, gen)
        kept: list[torch.Tensor]
        kept, majors, minors, distincts, tried = [], [], [], [], 0
        with torch.no_grad():
            for _ in range(max_rounds):
                if sum(len(k) for k in kept) >= count:
                    break
                a = torch.randint(len(x), (batch,), generator=gen)
                b = torch.randint(len(x), (batch,), generator=gen)
                ok = y[a] != y[b]
                a, b = a[ok], b[ok]
                z = mix * vae.encode(x[a])[0] + (1 - mix) * vae.encode(x[b])[0]
                img = vae.decode(z)
                preds = torch.stack([net(img).argmax(1) for net in nets], dim=1)
                distinct = (F.one_hot(preds, 10).sum(1) > 0).sum(1)
                keep = (distinct >= lo) & (distinct <= hi)
                tried += len(a)
                kept.append((img[keep] * 255).round().to(torch.uint8).reshape(-1, 28, 28))
                majors.append(y[a][keep])
                minors.append(y[b][keep])
                distincts.append(distinct[keep])
    got = sum(len(k) for k in kept)
    if got < count:
        raise InvalidInputError(f"only {got} of {count} ambiguous digits passed the disagreement test after {max_rounds} rounds; raise max_rounds or lower count")
    cat = lambda parts: torch.cat(parts)[:count]  # noqa: E731
    return {"images": cat(kept), "major": cat(majors), "minor": cat(minors), "distinct": cat(distincts), "tried": torch.tensor(tried)}


def mix_mnist(
    root: str | os.PathLike[str] | None = None,
    *,
    n_in_task: int = 40_000,
    n_ambiguous: int = 10_000,
    n_ood: int = 10_000,
    seed: int = 0,
    flatten: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    notmnist_root: str | os.PathLike[str] | None = None,
    recipe: dict | None = None,
    download: bool = False,
) -> DatasetBundle:
    """The MixMNIST open-set pool: MNIST digits (in task), ambiguous digits and notMNIST letters (not in task).

    The paper's pool holds 60,000 + 15,000 + 18,724 samples (about 4 : 1 : 1.2);
    with the 10,000 notMNIST letters available here the defaults keep about
    4 : 1 : 1 (40,000 : 10,000 : 10,000).  The test set is the MNIST test set.

    Parameters
    ----------
    root : path-like, optional
        MNIST folder (see :func:`activelearn.datasets.mnist`).
    n_in_task, n_ambiguous, n_ood : int
        Samples of each kind in the pool (in-task digits are drawn without
        replacement from MNIST train, letters from notMNIST).
    seed : int
        Seeds the draws, the recipe and the pool order.
    flatten : bool
        Samples of shape ``(784,)`` instead of ``(1, 28, 28)``.
    cache_dir : path-like, optional
        Where the ambiguous digits are cached (see :func:`default_cache_dir`).
    notmnist_root : path-like, optional
        notMNIST folder (see :func:`activelearn.datasets.notmnist`).
    recipe : dict, optional
        Keyword arguments for :func:`ambiguous_digits` (``vae_epochs``,
        ``clf_epochs``, ``latent``...), part of the cache key.
    download : bool, default False
        Download the MNIST digits through torchvision when no folder holds them
        (notMNIST cannot be downloaded).

    Returns
    -------
    DatasetBundle
        ``name="mix_mnist"``, 10 classes.  ``meta["in_task"]`` (bool, per pool
        sample) is what the oracle needs: build it as
        ``SimulatedOracle(bundle.train_y, num_classes=10, in_task=bundle.meta["in_task"])``.
        ``meta["kind"]``: 0 in task, 1 ambiguous, 2 out of distribution.
        ``train_y`` holds the digit for in-task samples; for the others it
        holds the major (70%) digit of an ambiguous image or the letter index
        (0 = A) of a notMNIST image, which an open-set oracle never gives.
    """
    for name, v in (("n_in_task", n_in_task), ("n_ambiguous", n_ambiguous), ("n_ood", n_ood)):
        check_nonnegative_int(name, v)
    check_positive_int("n_in_task", n_in_task)
    tr_img, tr_lab, te_img, te_lab, source = _load_raw_mnist(root, bool(download))
    if n_in_task > len(tr_img):
        raise InvalidParameterError(f"n_in_task={n_in_task} exceeds the {len(tr_img)} MNIST training digits")
    letters_img, letters = notmnist(notmnist_root)
    if n_ood > len(letters_img):
        raise InvalidParameterError(f"n_ood={n_ood} exceeds the {len(letters_img)} notMNIST letters available")
    recipe = dict(recipe or {})
    # the generator keeps candidates in a fixed seeded stream, so a cached run of
    # N >= n_ambiguous images holds exactly the first n_ambiguous: the key leaves n out
    key_src = json.dumps({"seed": seed, "recipe": recipe}, sort_keys=True)
    key = hashlib.sha1(key_src.encode()).hexdigest()[:16]
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / f"ambiguous-{key}.pt"
    amb = torch.load(path) if n_ambiguous and path.is_file() else None
    if n_ambiguous == 0:
        amb = {"images": torch.zeros(0, 28, 28, dtype=torch.uint8), "major": torch.zeros(0, dtype=torch.long), "tried": torch.tensor(0)}
    elif amb is None or len(amb["images"]) < n_ambiguous:
        amb = ambiguous_digits(tr_img, tr_lab, n_ambiguous, seed=seed, **recipe)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(amb, tmp)
        os.replace(tmp, path)
    amb = {k: (v[:n_ambiguous] if v.ndim else v) for k, v in amb.items()}
    rng = np.random.default_rng([seed, 0x313])
    in_idx = rng.choice(len(tr_img), size=n_in_task, replace=False)
    ood_idx = rng.choice(len(letters_img), size=n_ood, replace=False)
    images = torch.cat([tr_img[in_idx], amb["images"], letters_img[ood_idx]])
    ys = torch.cat([tr_lab[in_idx], amb["major"].long(), letters[ood_idx]])
    kind = torch.cat([torch.full((n_in_task,), IN_TASK), torch.full((n_ambiguous,), AMBIGUOUS), torch.full((n_ood,), OOD)]).to(torch.int8)
    order = torch.from_numpy(rng.permutation(len(images)))
    images, ys, kind = images[order], ys[order], kind[order]
    train_x, test_x = _normalise(images), _normalise(te_img)
    shape: tuple[int, ...] = (1, 28, 28)
    if flatten:
        train_x, test_x = train_x.reshape(len(train_x), -1), test_x.reshape(len(test_x), -1)
        shape = (784,)
    return DatasetBundle(
        name="mix_mnist",
        train_x=train_x,
        train_y=ys,
        test_x=test_x,
        test_y=te_lab,
        num_classes=10,
        task="classification",
        input_shape=shape,
        meta={
            "root": source,
            "mean": MNIST_MEAN,
            "std": MNIST_STD,
            "in_task": (kind == IN_TASK).numpy(),
            "kind": kind.numpy(),
            "counts": {"in_task": n_in_task, "ambiguous": n_ambiguous, "ood": n_ood},
            "ambiguous_cache": str(path) if n_ambiguous else None,
            "ambiguous_tried": int(amb["tried"]),
            "recipe": recipe,
            "seed": seed,
        },
    )
