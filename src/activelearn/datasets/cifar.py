"""CIFAR-10 and its standard crop-and-flip augmentation on tensors."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..exceptions import DatasetNotFoundError, InvalidInputError, InvalidParameterError
from ..augment import RandomCropFlip
from .base import DatasetBundle, candidate_roots, default_download_root, find_root, raise_not_found

__all__ = ["cifar10", "RandomCropFlip", "CIFAR10_MEAN", "CIFAR10_STD", "CIFAR10_FILES"]

#: Per-channel mean of the CIFAR-10 training pixels (after / 255).
CIFAR10_MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
#: Per-channel standard deviation of the CIFAR-10 training pixels (after / 255).
CIFAR10_STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)

_BATCH_DIR = "cifar-10-batches-py"
#: Files of the python version of CIFAR-10, inside ``cifar-10-batches-py/``.
CIFAR10_FILES: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def _has_batches(folder: Path) -> bool:
    return all((folder / f).is_file() for f in CIFAR10_FILES)


def _load_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as fh:
        entry: dict[str, Any] = pickle.load(fh, encoding="latin1")
    try:
        data = np.asarray(entry["data"], dtype=np.uint8)
        labels = np.asarray(entry["labels"] if "labels" in entry else entry["fine_labels"], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"{path} is not a CIFAR-10 python batch ({exc})") from exc
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (data.shape[0],):
        raise InvalidInputError(
            f"{path}: expected data of shape (N, 3072) and N labels, got {data.shape} and {labels.shape}"
        )
    return data.reshape(-1, 3, 32, 32), labels


def _normalise(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).to(torch.float32).div_(255.0)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std)


def _find_or_download(root: str | os.PathLike[str] | None, download: bool) -> Path:
    """The folder holding the batches: searched (see :func:`cifar10`), else downloaded when ``download``."""
    folders: list[Path] = []
    for c in candidate_roots("cifar10", root):
        folders += [c / _BATCH_DIR, c] if c.name != _BATCH_DIR else [c]
    found = find_root(folders, _has_batches)
    if found is not None:
        return found
    if not download:
        raise_not_found("CIFAR-10", folders, [f"{_BATCH_DIR}/{f}" for f in CIFAR10_FILES], subdir="cifar10")
    from torchvision.datasets import CIFAR10  # lazy: only needed to download

    dl_root = default_download_root("cifar10", root)
    dl_root.mkdir(parents=True, exist_ok=True)
    try:
        CIFAR10(str(dl_root), train=True, download=True)
        CIFAR10(str(dl_root), train=False, download=True)
    except (RuntimeError, OSError) as exc:  # no internet, a mirror down, a full disk
        raise DatasetNotFoundError(f"downloading CIFAR-10 into {dl_root} failed ({exc}); check the connection, or put the batches there") from exc
    found = dl_root / _BATCH_DIR
    if not _has_batches(found):
        raise_not_found("CIFAR-10", [found], list(CIFAR10_FILES), subdir="cifar10")
    return found


def _class_names(meta_file: Path) -> list[str] | None:
    """The class names of ``batches.meta``, or None when it is missing or unreadable (they are optional)."""
    if not meta_file.is_file():
        return None
    try:
        with open(meta_file, "rb") as fh:
            return list(pickle.load(fh, encoding="latin1")["label_names"])
    except Exception:  # noqa: BLE001 - class names are optional
        return None


def cifar10(
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    augment: bool = True,
) -> DatasetBundle:
    """Load CIFAR-10 (50,000 training and 10,000 test 32x32 colour images, 10 classes).

    Images are scaled to ``[0, 1]`` and normalised per channel with
    :data:`CIFAR10_MEAN` and :data:`CIFAR10_STD`.

    Parameters
    ----------
    root : path-like, optional
        Folder holding ``cifar-10-batches-py/`` (the python version of
        CIFAR-10, as :class:`torchvision.datasets.CIFAR10` stores it), or that
        folder itself, or ``root/cifar10`` holding it.  When ``None`` the search
        order is ``$ACTIVELEARN_DATA/cifar10``, ``<cwd>/../shared/data/cifar10``,
        ``<repo root>/../shared/data/cifar10``, then ``<cwd>/data/cifar10``.
    download : bool, default False
        When no folder holds the files, download them with
        :class:`torchvision.datasets.CIFAR10` (into ``root``, else
        ``$ACTIVELEARN_DATA/cifar10``, else ``<cwd>/data/cifar10``).  Needs internet.
    augment : bool, default True
        Attach :class:`RandomCropFlip` (crop 32 with padding 4, horizontal flip)
        as ``train_transform``; padding is black in pixel space.  It draws from
        the generator the trainer passes (never torch's global RNG) and runs
        batched on the training device (:mod:`activelearn.augment`).

    Returns
    -------
    DatasetBundle
        ``name="cifar10"``, ``input_shape=(3, 32, 32)``;
        ``meta["classes"]`` holds the class names.

    Raises
    ------
    DatasetNotFoundError
        If the batches are not found and ``download`` is False.
    InvalidInputError
        If a batch file is malformed.

    Notes
    -----
    The batch files are read directly (same pickle layout torchvision reads);
    torchvision is used only to download.  Load only files you trust: they are
    Python pickles.  Memory: about 740 MB of float32.
    """
    if not isinstance(download, bool):
        raise InvalidParameterError(f"download must be a bool, got {download!r}")
    if not isinstance(augment, bool):
        raise InvalidParameterError(f"augment must be a bool, got {augment!r}")
    found = _find_or_download(root, download)
    parts = [_load_batch(found / f) for f in CIFAR10_FILES[:5]]
    tr_x = np.concatenate([p[0] for p in parts])
    tr_y = np.concatenate([p[1] for p in parts])
    te_x, te_y = _load_batch(found / "test_batch")
    classes = _class_names(found / "batches.meta")
    fill = tuple(-m / s for m, s in zip(CIFAR10_MEAN, CIFAR10_STD))
    return DatasetBundle(
        name="cifar10",
        train_x=_normalise(tr_x),
        train_y=torch.from_numpy(tr_y),
        test_x=_normalise(te_x),
        test_y=torch.from_numpy(te_y),
        num_classes=10,
        task="classification",
        input_shape=(3, 32, 32),
        train_transform=RandomCropFlip(32, 4, 0.5, fill=fill) if augment else None,
        meta={
            "root": str(found),
            "mean": CIFAR10_MEAN,
            "std": CIFAR10_STD,
            "augment": augment,
            "classes": classes,
        },
    )
