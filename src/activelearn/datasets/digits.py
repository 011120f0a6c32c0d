"""scikit-learn's bundled 8x8 digits: the built-in dataset that needs no files."""

from __future__ import annotations

import numbers

import numpy as np
import torch

from ..exceptions import InvalidParameterError
from .base import DatasetBundle

__all__ = ["digits"]


def digits(*, test_size: float | int = 0.2, seed: int = 0) -> DatasetBundle:
    """Load scikit-learn's 8x8 handwritten digits with a stratified train/test split.

    1,797 samples of 64 pixel features (values 0..16, scaled to ``[0, 1]`` by
    dividing by 16), 10 classes.  The data ship with scikit-learn, so this
    loader never touches the network or the disk outside the package.

    Parameters
    ----------
    test_size : float or int, default 0.2
        Fraction of samples in ``(0, 1)`` or absolute number of test samples
        (at least 10 and at most 1,787, so that every class can appear on both sides).
    seed : int, default 0
        Seed of the stratified split; the same seed gives the same split.

    Returns
    -------
    DatasetBundle
        ``name="digits"``, ``input_shape=(64,)``, float32 inputs, int64 labels,
        no augmentation.

    Raises
    ------
    InvalidParameterError
        If ``test_size`` or ``seed`` is invalid.

    Examples
    --------
    >>> b = digits()
    >>> b.train_x.shape, b.test_x.shape
    (torch.Size([1437, 64]), torch.Size([360, 64]))
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    n_total, n_classes = 1797, 10
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise InvalidParameterError(
            f"test_size must be a fraction in (0, 1) or an int count, got {test_size!r}"
        )
    if isinstance(test_size, numbers.Integral):
        if not (n_classes <= test_size <= n_total - n_classes):
            raise InvalidParameterError(
                f"test_size as a count must lie in [{n_classes}, {n_total - n_classes}], got {test_size}; "
                "or pass a fraction such as 0.2"
            )
        test_size = int(test_size)
    elif not (0.0 < float(test_size) < 1.0):
        raise InvalidParameterError(f"test_size as a fraction must lie in (0, 1), got {test_size!r}")
    else:
        test_size = float(test_size)
        n_test = int(np.ceil(test_size * n_total))
        if n_test < n_classes or n_total - n_test < n_classes:
            raise InvalidParameterError(
                f"test_size={test_size} leaves {n_test} test / {n_total - n_test} train samples; "
                f"both sides need at least {n_classes} (one per class)"
            )
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InvalidParameterError(f"seed must be a non-negative int, got {seed!r}")

    raw = load_digits()
    x = (raw.data.astype(np.float32) / 16.0).astype(np.float32)
    y = raw.target.astype(np.int64)
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=test_size, stratify=y, random_state=int(seed), shuffle=True)
    return DatasetBundle(
        name="digits",
        train_x=torch.from_numpy(x[tr]),
        train_y=torch.from_numpy(y[tr]),
        test_x=torch.from_numpy(x[te]),
        test_y=torch.from_numpy(y[te]),
        num_classes=n_classes,
        task="classification",
        input_shape=(64,),
        train_transform=None,
        meta={
            "source": "sklearn.datasets.load_digits",
            "test_size": test_size,
            "seed": int(seed),
            "scaling": "pixel / 16",
            "train_index": tr,
            "test_index": te,
        },
    )
