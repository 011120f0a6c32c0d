"""Shared argument checks.  Each raises a library exception naming the value received."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch

from .exceptions import InvalidInputError, InvalidParameterError

__all__ = [
    "check_positive_int",
    "check_nonnegative_int",
    "check_fraction",
    "check_choice",
    "as_feature_tensor",
    "as_index_array",
    "resolve_device",
]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_positive_int(name: str, value: Any) -> int:
    """Return ``int(value)`` or raise ``InvalidParameterError`` if it is not an int >= 1."""
    if not _is_int(value) or value < 1:
        raise InvalidParameterError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def check_nonnegative_int(name: str, value: Any) -> int:
    """Return ``int(value)`` or raise if it is not an int >= 0."""
    if not _is_int(value) or value < 0:
        raise InvalidParameterError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def check_fraction(name: str, value: Any, *, low: float = 0.0, high: float = 1.0) -> float:
    """Return ``float(value)`` or raise if it is not a real number in ``[low, high]``."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not (low <= float(value) <= high):
        raise InvalidParameterError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Return ``value`` or raise if it is not one of ``choices``."""
    if value not in choices:
        raise InvalidParameterError(f"{name} must be one of {list(choices)}, got {value!r}")
    return str(value)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` means CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidParameterError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError(
            f"device {device!r} requested but CUDA is not available; pass device='cpu'"
        )
    return dev


def as_feature_tensor(
    features: Any,
    name: str = "features",
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    allow_empty: bool = False,
) -> torch.Tensor:
    """Convert an array-like N x d to a finite floating tensor on ``device``.

    Keeps float64 input as float64 (so exact comparisons are possible); other
    dtypes become float32 unless ``dtype`` is given.
    """
    if isinstance(features, torch.Tensor):
        t = features
    else:
        try:
            t = torch.as_tensor(np.asarray(features))
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"{name} must be an array or tensor of numbers, got {type(features).__name__}") from exc
    if t.ndim != 2:
        raise InvalidInputError(f"{name} must be 2-D (N x d), got shape {tuple(t.shape)}; reshape it to (N, -1)")
    if t.shape[0] == 0 and not allow_empty:
        raise InvalidInputError(f"{name} is empty (shape {tuple(t.shape)}); pass at least one row")
    if dtype is not None:
        t = t.to(dtype)
    elif not t.is_floating_point():
        t = t.to(torch.float32)
    if device is not None:
        t = t.to(resolve_device(device))
    if t.numel() and not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).any(dim=1).sum())
        raise InvalidInputError(f"{name} holds NaN or Inf in {bad} row(s); clean or impute them first")
    return t


def as_index_array(indices: Any, name: str, *, n: int | None = None) -> np.ndarray:
    """Convert indices or a boolean mask to a 1-D int64 array, checking range and uniqueness."""
    arr = indices.detach().cpu().numpy() if isinstance(indices, torch.Tensor) else np.asarray(indices)
    if arr.dtype == bool:
        if n is not None and arr.shape != (n,):
            raise InvalidInputError(f"{name} as a boolean mask must have shape ({n},), got {arr.shape}")
        return np.flatnonzero(arr).astype(np.int64)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise InvalidInputError(f"{name} must be a 1-D array of ints or a boolean mask, got dtype {arr.dtype} shape {arr.shape}")
    arr = arr.astype(np.int64)
    if n is not None and (arr.min() < 0 or arr.max() >= n):
        raise InvalidInputError(f"{name} must lie in [0, {n}), got values from {arr.min()} to {arr.max()}")
    if np.unique(arr).size != arr.size:
        raise InvalidInputError(f"{name} holds duplicate indices; pass each index once")
    return arr
