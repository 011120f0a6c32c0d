"""Dataset loaders returning :class:`DatasetBundle` objects of model-ready tensors.

``digits`` (classification) and ``diabetes`` (regression) are built in (they
ship with scikit-learn); ``mnist``, ``repeated_mnist``
and ``cifar10`` read local files (see each loader for where it looks) or
download them with ``download=True``.

Examples
--------
>>> from activelearn import datasets
>>> datasets.available()
['cifar10', 'diabetes', 'digits', 'imbalanced_blobs', 'mix_mnist', 'mnist', 'repeated_mnist']
>>> bundle = datasets.load("digits", seed=1)
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

from ..exceptions import InvalidParameterError
from .base import DatasetBundle
from .cifar import CIFAR10_MEAN, CIFAR10_STD, RandomCropFlip, cifar10
from .diabetes import diabetes
from .digits import digits
from .idx import read_idx
from .mixmnist import mix_mnist
from .mnist import MNIST_MEAN, MNIST_STD, mnist, notmnist, repeated_mnist
from .synthetic import imbalanced_blobs

__all__ = [
    "DatasetBundle",
    "RandomCropFlip",
    "read_idx",
    "digits",
    "diabetes",
    "mnist",
    "repeated_mnist",
    "notmnist",
    "mix_mnist",
    "cifar10",
    "imbalanced_blobs",
    "load",
    "available",
    "MNIST_MEAN",
    "MNIST_STD",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
]

_LOADERS: dict[str, Callable[..., DatasetBundle]] = {
    "digits": digits,
    "diabetes": diabetes,
    "mnist": mnist,
    "mix_mnist": mix_mnist,
    "repeated_mnist": repeated_mnist,
    "cifar10": cifar10,
    "imbalanced_blobs": imbalanced_blobs,
}


def available() -> list[str]:
    """Return the names accepted by :func:`load`, sorted.

    Returns
    -------
    list of str
        ``["cifar10", "diabetes", "digits", "imbalanced_blobs", "mix_mnist", "mnist", "repeated_mnist"]``.  Whether a
        file-based dataset is actually present on disk is checked only when loading.
    """
    return sorted(_LOADERS)


def load(name: str, **kwargs: Any) -> DatasetBundle:
    """Load a dataset by name.

    Parameters
    ----------
    name : str
        One of :func:`available` (case-insensitive; ``-`` and spaces read as ``_``).
    **kwargs
        Passed on to the loader (e.g. ``root=``, ``seed=``, ``flatten=``).

    Returns
    -------
    DatasetBundle
        The loaded dataset.

    Raises
    ------
    InvalidParameterError
        If ``name`` is unknown (the message suggests close matches and lists
        the available names) or a keyword is not accepted by that loader.
    DatasetNotFoundError
        If the dataset's files cannot be found.
    """
    if not isinstance(name, str):
        raise InvalidParameterError(f"name must be a str, got {type(name).__name__}; choose from {available()}")
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in _LOADERS:
        close = difflib.get_close_matches(key, available(), n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise InvalidParameterError(f"unknown dataset {name!r}.{hint} Available: {available()}")
    loader = _LOADERS[key]
    params = inspect.signature(loader).parameters
    bad = sorted(set(kwargs) - set(params))
    if bad:
        raise InvalidParameterError(
            f"load({key!r}) got unexpected keyword(s) {bad}; {key} accepts {list(params)}"
        )
    return loader(**kwargs)
