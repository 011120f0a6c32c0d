"""MixMNIST (Kim, Kim & Hwang): an open-set pool of MNIST digits, ambiguous digits and notMNIST letters.

Recipe of the ambiguous digits (the paper's, at a small scale, trained here):

1. a small VAE (MLP 784-400-``latent``-400-784, Bernoulli decoder) is trained
   on MNIST train;
2. ten small classifiers (MLP 784-128-10, each with its own seed and its own
   random half of MNIST train) are trained;
3. pairs of MNIST training digits of *different* classes are drawn; their
   latent means are mixed 7:3 (``mix``) and decoded;
4. the decoded intensities are calibrated to MNIST's stroke statistics
   (``calibrate="ink"``: :func:`intensity_map`, then :func:`match_ink`): a small VAE's
   Bernoulli decoder draws strokes as soft gray ramps (91% of inked pixels
   mid-gray, 64-191, against 50% in MNIST), a style cue that would tell the
   ambiguous digits apart from real ones by texture alone; the paper's NVAE
   images do not have it;
5. a calibrated image is kept when the ten classifiers disagree: 2 or 3
   distinct predicted classes (``disagreement``).

:func:`ink_histogram` measures the statistic (share of inked pixels per
intensity band) for real and generated images.

Everything is seeded.  The ambiguous images are cached on disk after the
first build (``cache_dir``, default ``$ACTIVELEARN_CACHE/mixmnist`` or
``~/.cache/activelearn/mixmnist``), keyed by every recipe parameter and the
seed (a cached set of N images serves any request for n <= N: candidates
come in a fixed seeded stream, so the first n are the same).  The full default build takes about a minute or two on a 2-core CPU.
"""

from __future__ import annotations

import hashlib
import itertools
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

__all__ = ["mix_mnist", "ambiguous_digits", "default_cache_dir", "intensity_map", "match_ink", "ink_histogram"]

IN_TASK, AMBIGUOUS, OOD = 0, 1, 2
#: bumped when the recipe's output changes for the same parameters (part of the cache key)
RECIPE_VERSION = 2
#: intensity bands of :func:`ink_histogram` (uint8 edges): faint, mid-gray, dark
INK_BANDS = (1, 64, 192, 256)


def ink_histogram(images: torch.Tensor, edges: tuple[int, ...] = INK_BANDS) -> np.ndarray:
    """Share of the inked pixels (value >= ``edges[0]``) of uint8 ``images`` in each band ``[edges[i], edges[i+1])``.

    With the default edges: faint (1-63), mid-gray (64-191), dark (192-255).
    MNIST train gives 0.18 / 0.26 / 0.55 (``docs/results/mixmnist/generator.json``).
    """
    v = torch.as_tensor(images).reshape(-1).long()
    counts = torch.histc(v.float(), bins=256, min=0, max=255).numpy()  # one bin per uint8 value
    inked = counts[edges[0] :].sum()
    if inked == 0:
        raise InvalidInputError("no inked pixel (all values 0): cannot measure an ink histogram")
    return np.array([counts[a:b].sum() / inked for a, b in itertools.pairwise(edges)])


def intensity_map(generated: torch.Tensor, real: torch.Tensor, levels: int = 1024) -> torch.Tensor:
    """The monotone map from decoder intensities to MNIST's: quantile matching of all pixels.

    ``generated``: floats in [0, 1] (decoder outputs, e.g. reconstructions of
    real digits); ``real``: uint8 images.  Returns a lookup table of ``levels``
    uint8 values: pixel value ``v`` maps to ``table[round(v * (levels - 1))]``,
    the real-pixel quantile at the rank ``v`` has among the generated pixels.
    Monotone, so the image's shape and ink order are kept; applied to the
    reconstructions it gives them MNIST's pixel histogram (up to the table's
    resolution).
    """
    g = torch.sort(generated.reshape(-1).float()).values
    r = torch.sort(torch.as_tensor(real).reshape(-1).float()).values
    grid = torch.linspace(0, 1, levels)
    rank = torch.searchsorted(g, grid).clamp(max=len(g) - 1).float() / max(1, len(g) - 1)
    return r[(rank * (len(r) - 1)).round().long()].round().to(torch.uint8)


def match_ink(images: torch.Tensor, real_inked: torch.Tensor) -> torch.Tensor:
    """Per image, give the inked pixels (value > 0) the intensities of MNIST's inked pixels, by rank.

    ``images``: uint8, N x ...; ``real_inked``: sorted uint8 values of real
    inked pixels (their quantile function).  In each image the j-th faintest
    of its c inked pixels gets the real quantile at ``(j + 0.5) / c``; which
    pixels are inked, and their order, are kept (the stroke's shape and
    width), only the intensity profile across the stroke becomes MNIST's.
    """
    flat = images.reshape(len(images), -1)
    n = flat.shape[1]
    vals, order = torch.sort(flat.long(), dim=1)
    c = (flat > 0).sum(1, keepdim=True)
    pos = torch.arange(n).unsqueeze(0) - (n - c)  # rank among the inked pixels, negative for blank ones
    frac = (pos.clamp(min=0).float() + 0.5) / c.clamp(min=1).float()
    q = real_inked.reshape(-1)
    new = torch.where(pos >= 0, q[(frac * (len(q) - 1)).round().long().clamp(max=len(q) - 1)].long(), torch.zeros_like(vals))
    out = torch.empty_like(vals).scatter_(1, order, new)
    return out.to(torch.uint8).reshape(images.shape)


def _apply_map(img: torch.Tensor, table: torch.Tensor | None, real_inked: torch.Tensor | None) -> torch.Tensor:
    """uint8 images from decoder outputs in [0, 1]: through ``table`` when given (then :func:`match_ink`), else scaled and rounded."""
    if table is None:
        return (img * 255).round().to(torch.uint8)
    out = table[(img.clamp(0, 1) * (len(table) - 1)).round().long()]
    return out if real_inked is None else match_ink(out, real_inked)


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
    calibrate: str = "ink",
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
    calibrate : {"ink", "quantile", "none"}
        ``"quantile"``: decoded intensities go through :func:`intensity_map`,
        fitted on the VAE's reconstructions of 4,096 training digits against
        those digits.  ``"ink"`` (default): then, per image, :func:`match_ink`
        against the inked pixels of those digits (the global map alone leaves
        the mixes, blurrier than reconstructions, with too many mid-gray
        pixels).  ``"none"``: the decoder's output scaled to 0-255 (the blurry
        images of recipe version 1).  The classifiers judge the final images.

    Returns
    -------
    dict with ``images`` (uint8 count x 28 x 28), ``major`` / ``minor`` (the
    digits mixed 7 : 3), ``distinct`` (distinct predictions), ``tried``
    (decoded candidates in total, a 0-dim tensor).
    """
    check_nonnegative_int("count", count)
    check_fraction("mix", mix)
    lo, hi = disagreement
    if calibrate not in ("ink", "quantile", "none"):
        raise InvalidParameterError(f"calibrate must be 'ink', 'quantile' or 'none', got {calibrate!r}")
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
        table = real_inked = None
        if calibrate != "none":
            ref = torch.randperm(len(x), generator=gen)[:4096]
            with torch.no_grad():
                table = intensity_map(vae.decode(vae.encode(x[ref])[0]), images[ref])
            if calibrate == "ink":
                real_inked = torch.sort(images[ref].reshape(-1)[images[ref].reshape(-1) > 0]).values
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
                img8 = _apply_map(vae.decode(z), table, real_inked)
                preds = torch.stack([net(img8.float() / 255.0).argmax(1) for net in nets], dim=1)
                distinct = (F.one_hot(preds, 10).sum(1) > 0).sum(1)
                keep = (distinct >= lo) & (distinct <= hi)
                tried += len(a)
                kept.append(img8[keep].reshape(-1, 28, 28))
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
    key_src = json.dumps({"seed": seed, "recipe": recipe, "version": RECIPE_VERSION}, sort_keys=True)
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
