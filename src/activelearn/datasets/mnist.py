"""MNIST, Repeated MNIST (BatchBALD) and the notMNIST out-of-distribution letters."""

from __future__ import annotations

import numbers
import os
from pathlib import Path

import numpy as np
import torch

from ..exceptions import DatasetNotFoundError, InvalidInputError, InvalidParameterError
from .base import (
    DatasetBundle,
    candidate_roots,
    default_download_root,
    find_root,
    raise_not_found,
)
from .idx import read_idx

__all__ = [
    "mnist",
    "repeated_mnist",
    "notmnist",
    "MNIST_MEAN",
    "MNIST_STD",
    "MNIST_FILES",
    "NOTMNIST_FILES",
]

#: Mean and standard deviation of the MNIST training pixels (after / 255).
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

#: The four standard MNIST idx files (an uncompressed copy without ``.gz`` is accepted too).
MNIST_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

#: The notMNIST test files (10,000 letters A-J in idx format).
NOTMNIST_FILES: tuple[str, ...] = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _locate(folder: Path, fname: str) -> Path | None:
    """Return ``folder/fname`` or its uncompressed twin, whichever exists."""
    for cand in (folder / fname, folder / fname.removesuffix(".gz")):
        if cand.is_file():
            return cand
    return None


def _search_folders(subdir: str, root: str | os.PathLike[str] | None) -> list[Path]:
    """Candidate folders plus the ``MNIST/raw`` layout torchvision downloads into."""
    out: list[Path] = []
    for c in candidate_roots(subdir, root):
        out.append(c)
        if subdir == "mnist":
            out.append(c / "MNIST" / "raw")
    return out


def _find_files(
    subdir: str, root: str | os.PathLike[str] | None, files: tuple[str, ...]
) -> tuple[Path | None, list[Path]]:
    folders = _search_folders(subdir, root)
    found = find_root(folders, lambda f: all(_locate(f, n) is not None for n in files))
    return found, folders


def _normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, 28, 28)`` -> float32 ``(N, 1, 28, 28)`` normalised with the MNIST mean/std."""
    x = images.to(torch.float32).div_(255.0).sub_(MNIST_MEAN).div_(MNIST_STD)
    return x.unsqueeze(1)


def _check_pair(images: np.ndarray, labels: np.ndarray, what: str) -> None:
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise InvalidInputError(
            f"{what} images must be uint8 of shape (N, 28, 28), got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise InvalidInputError(
            f"{what} labels must be 1-D with one label per image ({images.shape[0]}), got shape {labels.shape}"
        )


def _load_raw_mnist(
    root: str | os.PathLike[str] | None, download: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, str]:
    """Return uint8 train/test images, int64 labels and a description of the source."""
    found, tried = _find_files("mnist", root, MNIST_FILES)
    if found is not None:
        arrays = [read_idx(_locate(found, n)) for n in MNIST_FILES]  # type: ignore[arg-type]
        tr_img, tr_lab, te_img, te_lab = arrays
        _check_pair(tr_img, tr_lab, "MNIST train")
        _check_pair(te_img, te_lab, "MNIST test")
        return (
            torch.from_numpy(tr_img),
            torch.from_numpy(tr_lab.astype(np.int64)),
            torch.from_numpy(te_img),
            torch.from_numpy(te_lab.astype(np.int64)),
            str(found),
        )
    if not download:
        raise_not_found("MNIST", tried, MNIST_FILES, subdir="mnist")
    from torchvision.datasets import MNIST  # lazy: only needed to download

    dl_root = default_download_root("mnist", root)
    dl_root.mkdir(parents=True, exist_ok=True)
    try:
        train = MNIST(str(dl_root), train=True, download=True)
        test = MNIST(str(dl_root), train=False, download=True)
    except (RuntimeError, OSError) as exc:  # no internet, a mirror down, a full disk
        raise DatasetNotFoundError(f"downloading MNIST into {dl_root} failed ({exc}); check the connection, or put the idx files there") from exc
    return (
        torch.as_tensor(train.data, dtype=torch.uint8),
        torch.as_tensor(train.targets, dtype=torch.int64),
        torch.as_tensor(test.data, dtype=torch.uint8),
        torch.as_tensor(test.targets, dtype=torch.int64),
        f"torchvision download into {dl_root}",
    )


def mnist(
    root: str | os.PathLike[str] | None = None,
    *,
    flatten: bool = False,
    download: bool = False,
) -> DatasetBundle:
    """Load MNIST (60,000 training and 10,000 test digits) from the 4 idx files.

    Pixels are scaled to ``[0, 1]`` then normalised with mean 0.1307 and standard
    deviation 0.3081.

    Parameters
    ----------
    root : path-like, optional
        Folder holding the four files of :data:`MNIST_FILES` (gzip or
        uncompressed), directly or in ``root/mnist`` or torchvision's
        ``root/MNIST/raw``.  When ``None`` the search order is
        ``$ACTIVELEARN_DATA/mnist``, ``<cwd>/../shared/data/mnist``,
        ``<repo root>/../shared/data/mnist``, then ``<cwd>/data/mnist``.
    flatten : bool, default False
        Return samples of shape ``(784,)`` instead of ``(1, 28, 28)``.
    download : bool, default False
        When no folder holds the files, download them with
        :class:`torchvision.datasets.MNIST` (into ``root``, else
        ``$ACTIVELEARN_DATA/mnist``, else ``<cwd>/data/mnist``).  Needs internet.

    Returns
    -------
    DatasetBundle
        ``name="mnist"``, 10 classes, no augmentation; ``meta["root"]`` tells
        where the files were read from.

    Raises
    ------
    DatasetNotFoundError
        If the files are not found and ``download`` is False; the message lists
        the folders searched and the expected file names.
    InvalidInputError
        If a file is corrupt or holds unexpected shapes.
    """
    if not isinstance(flatten, bool):
        raise InvalidParameterError(f"flatten must be a bool, got {flatten!r}")
    if not isinstance(download, bool):
        raise InvalidParameterError(f"download must be a bool, got {download!r}")
    tr_img, tr_lab, te_img, te_lab, source = _load_raw_mnist(root, download)
    train_x, test_x = _normalise(tr_img), _normalise(te_img)
    shape: tuple[int, ...] = (1, 28, 28)
    if flatten:
        train_x, test_x = train_x.reshape(len(train_x), -1), test_x.reshape(len(test_x), -1)
        shape = (784,)
    return DatasetBundle(
        name="mnist",
        train_x=train_x,
        train_y=tr_lab,
        test_x=test_x,
        test_y=te_lab,
        num_classes=10,
        task="classification",
        input_shape=shape,
        meta={"root": source, "mean": MNIST_MEAN, "std": MNIST_STD, "flatten": flatten},
    )


def repeated_mnist(
    root: str | os.PathLike[str] | None = None,
    *,
    copies: int = 3,
    noise_std: float = 0.1,
    seed: int = 0,
    flatten: bool = True,
    download: bool = False,
) -> DatasetBundle:
    """Build Repeated MNIST (BatchBALD): noisy copies of the MNIST training set.

    The 60,000 training images are normalised (mean 0.1307, std 0.3081),
    repeated ``copies`` times, and each copy receives its own Gaussian noise
    ``N(0, noise_std**2)`` drawn once, here, from a ``torch.Generator`` seeded
    with ``seed``.  Labels are repeated; the test set is the clean, unrepeated
    MNIST test set.

    Parameters
    ----------
    root : path-like, optional
        MNIST location, resolved as in :func:`mnist`.
    copies : int, default 3
        Number of copies of the training set (180,000 pool samples by default).
    noise_std : float, default 0.1
        Standard deviation of the per-copy noise, in normalised units; 0 gives
        exact duplicates.
    seed : int, default 0
        Seed of the noise; the same seed gives bit-identical data.
    flatten : bool, default True
        Samples of shape ``(784,)`` (for the feed-forward net of the RMNIST
        experiments) instead of ``(1, 28, 28)``.
    download : bool, default False
        As in :func:`mnist`.

    Returns
    -------
    DatasetBundle
        ``name="repeated_mnist"``.  Training sample ``i`` is copy
        ``i // 60000`` of MNIST training image ``i % 60000``;
        ``meta["base_index"]`` holds that original index for every sample.

    Raises
    ------
    InvalidParameterError
        If ``copies``, ``noise_std`` or ``seed`` is invalid.
    DatasetNotFoundError
        If the MNIST files cannot be found (see :func:`mnist`).

    Notes
    -----
    Memory: ``copies * 60000 * 784 * 4`` bytes (564 MB for 3 copies).
    """
    if isinstance(copies, bool) or not isinstance(copies, numbers.Integral) or copies < 1:
        raise InvalidParameterError(f"copies must be a positive int, got {copies!r}")
    if (
        isinstance(noise_std, bool)
        or not isinstance(noise_std, numbers.Real)
        or not np.isfinite(float(noise_std))
        or noise_std < 0
    ):
        raise InvalidParameterError(f"noise_std must be a finite number >= 0, got {noise_std!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InvalidParameterError(f"seed must be a non-negative int, got {seed!r}")
    base = mnist(root, flatten=flatten, download=download)
    n = base.num_train
    copies, noise_std = int(copies), float(noise_std)
    gen = torch.Generator().manual_seed(int(seed))
    x = torch.empty((copies * n, *base.input_shape), dtype=torch.float32)
    for c in range(copies):
        block = x[c * n : (c + 1) * n]
        if noise_std > 0:
            torch.randn(block.shape, generator=gen, out=block)
            block.mul_(noise_std).add_(base.train_x)
        else:
            block.copy_(base.train_x)
    return DatasetBundle(
        name="repeated_mnist",
        train_x=x,
        train_y=base.train_y.repeat(copies),
        test_x=base.test_x,
        test_y=base.test_y,
        num_classes=10,
        task="classification",
        input_shape=base.input_shape,
        meta={
            "root": base.meta["root"],
            "copies": copies,
            "noise_std": noise_std,
            "seed": int(seed),
            "flatten": flatten,
            "mean": MNIST_MEAN,
            "std": MNIST_STD,
            "base_index": torch.arange(n).repeat(copies),
        },
    )


def notmnist(root: str | os.PathLike[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Load the 10,000 notMNIST test letters (A-J), e.g. as out-of-distribution data.

    Parameters
    ----------
    root : path-like, optional
        Folder holding :data:`NOTMNIST_FILES` (directly or in ``root/notmnist``).
        When ``None``: ``$ACTIVELEARN_DATA/notmnist``,
        ``<cwd>/../shared/data/notmnist``, ``<repo root>/../shared/data/notmnist``,
        then ``<cwd>/data/notmnist``.

    Returns
    -------
    images : torch.Tensor
        uint8 tensor of shape ``(N, 28, 28)``, raw pixels 0..255 (not normalised;
        apply :data:`MNIST_MEAN` / :data:`MNIST_STD` to mix with MNIST).
    letters : torch.Tensor
        int64 tensor of shape ``(N,)``; ``k`` means letter ``chr(ord('A') + k)``.

    Raises
    ------
    DatasetNotFoundError
        If the files are not found (there is no download option).
    """
    found, tried = _find_files("notmnist", root, NOTMNIST_FILES)
    if found is None:
        raise_not_found("notMNIST", tried, NOTMNIST_FILES, subdir="notmnist", download_hint=False)
    images = read_idx(_locate(found, NOTMNIST_FILES[0]))  # type: ignore[arg-type]
    letters = read_idx(_locate(found, NOTMNIST_FILES[1]))  # type: ignore[arg-type]
    _check_pair(images, letters, "notMNIST")
    return torch.from_numpy(images), torch.from_numpy(letters.astype(np.int64))
