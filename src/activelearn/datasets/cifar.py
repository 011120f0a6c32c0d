"""CIFAR-10 and its standard crop-and-flip augmentation on tensors."""

from __future__ import annotations

import numbers
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..exceptions import DatasetNotFoundError, InvalidInputError, InvalidParameterError
from .base import DatasetBundle, candidate_roots, default_download_root, find_root, raise_not_found

__all__ = ["cifar10", "RandomCropFlip", "CIFAR10_MEAN", "CIFAR10_STD", "CIFAR10_FILES"]

#: Per-channel mean of the CIFAR-10 training pixels (after / 255).
CIFAR10_MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
#: Per-channel standard deviation of the CIFAR-10 training pixels (after / 255).
CIFAR10_STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)

_BATCH_DIR = "cifar-10-batches-py"
#: Files of the python version of CIFAR-10, inside ``cifar-10-batches-py/``.
CIFAR10_FILES: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


class RandomCropFlip:
    """Random crop with zero-style padding plus random horizontal flip, on one CHW tensor.

    The standard CIFAR augmentation (``RandomCrop(32, padding=4)`` then
    ``RandomHorizontalFlip()``), written with torch ops so that it runs on
    already-normalised tensors without PIL.

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
        channel (what :func:`cifar10` does).

    Notes
    -----
    Randomness comes from the ``generator`` passed to the call
    (``transform(x, generator=g)``); :class:`~activelearn.trainer.Trainer` passes
    one seeded from its own generator, so augmentation never draws from (or
    advances) torch's global RNG.  Called without one, it falls back to the global
    RNG, like torchvision's transforms.  A 4-D input ``(N, C, H, W)`` is augmented
    sample by sample, independently, from the same generator.
    Instances are picklable (usable in DataLoader workers).
    """

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
        if x.ndim == 4:
            return torch.stack([self(s, generator) for s in x])
        c, h, w = x.shape
        p = self.padding
        if h + 2 * p < self.size or w + 2 * p < self.size:
            raise InvalidInputError(
                f"cannot crop {self.size}x{self.size} from a {h}x{w} image padded by {p}"
            )
        if p > 0:
            fill = self.fill
            if isinstance(fill, tuple):
                if len(fill) != c:
                    raise InvalidInputError(f"fill has {len(fill)} values but the image has {c} channels")
                padded = torch.tensor(fill, dtype=x.dtype, device=x.device).view(c, 1, 1).expand(
                    c, h + 2 * p, w + 2 * p
                ).clone()
                padded[:, p : p + h, p : p + w] = x
            else:
                padded = F.pad(x, (p, p, p, p), value=fill)
        else:
            padded = x
        top = int(torch.randint(0, padded.shape[1] - self.size + 1, (1,), generator=generator))
        left = int(torch.randint(0, padded.shape[2] - self.size + 1, (1,), generator=generator))
        out = padded[:, top : top + self.size, left : left + self.size]
        if self.flip_p > 0 and float(torch.rand((), generator=generator)) < self.flip_p:
            out = out.flip(-1)
        return out.contiguous() if out.data_ptr() != x.data_ptr() else out.clone()

    def __repr__(self) -> str:
        return f"RandomCropFlip(size={self.size}, padding={self.padding}, flip_p={self.flip_p})"


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
        as ``train_transform``; padding is black in pixel space.  It uses
        torch's global RNG.

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
