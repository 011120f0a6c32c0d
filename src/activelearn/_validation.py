"""Shared argument checks.  Each raises a library exception naming the value received.

Two kinds live here:

* declared parameter constraints (:class:`Interval`, :class:`Options`,
  :func:`check_param`, :func:`check_params`), the idea of scikit-learn's
  ``_param_validation``: a function lists what each argument may be, and one
  routine refuses anything else with a uniform message
  (``"<name> must be <what>, got <value>"``);
* data checks: pool inputs (:func:`as_pool_inputs`), indices that must be
  integral (:func:`as_integral_indices`), oracle labels (:func:`check_label`)
  and test sets (:func:`as_test_set`).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .dataio import read_pairs
from .exceptions import InvalidInputError, InvalidParameterError

__all__ = [
    "Interval",
    "Options",
    "check_param",
    "check_params",
    "as_pool_inputs",
    "as_integral_indices",
    "check_label",
    "as_test_set",
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


# ------------------------------------------------------- declared constraints
@dataclass(frozen=True)
class Interval:
    """Numbers of one kind in a range; ``None`` bounds are infinite (and excluded).

    ``kind`` is ``numbers.Integral`` (ints, never bools) or ``numbers.Real``
    (ints and floats, never bools); NaN is never inside, nor is an infinite
    value unless a closed bound equals it.
    """

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"  # "both", "left", "right" or "neither"

    def __contains__(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, self.kind):
            return False
        v = float(value)  # type: ignore[arg-type]
        if math.isnan(v):
            return False
        low_ok = (-math.inf < v) if self.low is None else (v >= self.low if self.closed in ("both", "left") else v > self.low)
        high_ok = (v < math.inf) if self.high is None else (v <= self.high if self.closed in ("both", "right") else v < self.high)
        return low_ok and high_ok

    def __str__(self) -> str:
        integral = issubclass(self.kind, numbers.Integral)
        what = "an int" if integral else "a number"
        if not integral and (self.low is None or self.high is None):
            what = "a finite number"
        if self.low is not None and self.high is not None:
            left = "[" if self.closed in ("both", "left") else "("
            right = "]" if self.closed in ("both", "right") else ")"
            return f"{what} in {left}{self.low!r}, {self.high!r}{right}"
        if self.low is not None:
            return f"{what} {'>=' if self.closed in ('both', 'left') else '>'} {self.low!r}"
        if self.high is not None:
            return f"{what} {'<=' if self.closed in ('both', 'right') else '<'} {self.high!r}"
        return what


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values (strings, usually)."""

    values: tuple[Any, ...]

    def __contains__(self, value: object) -> bool:
        return isinstance(value, (str, int, float)) and not isinstance(value, bool) and value in self.values

    def __str__(self) -> str:
        return f"one of {list(self.values)}"


Constraint = Any  # an Interval, Options, a type (isinstance) or None (the value None)


def _satisfies(value: Any, constraint: Constraint) -> bool:
    if constraint is None:
        return value is None
    if isinstance(constraint, type):
        return isinstance(value, constraint) and not (isinstance(value, bool) and constraint is not bool)
    return value in constraint


def _describe(constraint: Constraint) -> str:
    if constraint is None:
        return "None"
    if isinstance(constraint, type):
        return f"a {constraint.__name__}"
    return str(constraint)


def check_param(name: str, value: Any, *constraints: Constraint) -> Any:
    """Return ``value`` if it satisfies one of ``constraints``, else raise ``InvalidParameterError``.

    The message lists every accepted form: ``"timeout must be a number >= 0,
    got -1"``, ``"num_classes must be an int >= 2 or None, got 1.5"``.
    """
    if any(_satisfies(value, c) for c in constraints):
        return value
    accepted = " or ".join(_describe(c) for c in constraints)
    raise InvalidParameterError(f"{name} must be {accepted}, got {value!r}")


def check_params(values: Mapping[str, Any], constraints: Mapping[str, Sequence[Constraint]]) -> None:
    """:func:`check_param` for every name of ``constraints`` (in their order), before anything is stored."""
    for name, accepted in constraints.items():
        check_param(name, values[name], *accepted)


# ------------------------------------------------------------------ data checks
_F32_MAX = float(torch.finfo(torch.float32).max)
_F32_EXACT_INT = 1 << 24  # every int of magnitude <= 2**24 is exact in float32


def _to_tensor(values: Any, name: str) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values
    arr = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if arr.dtype.kind not in "biuf":
        raise InvalidInputError(f"{name} must hold real numbers, got an array of dtype {arr.dtype}; convert it with np.asarray(x, dtype=np.float32)")
    return torch.from_numpy(np.ascontiguousarray(arr))


def _check_finite(t: torch.Tensor, name: str, chunk: int = 1 << 22) -> None:
    """Refuse NaN/Inf, reading the tensor in bounded chunks."""
    flat = t.reshape(-1)
    for start in range(0, flat.numel(), chunk):
        if not bool(torch.isfinite(flat[start : start + chunk]).all()):
            bad = int((~torch.isfinite(t.reshape(t.shape[0], -1))).any(dim=1).sum())
            raise InvalidInputError(f"{name} hold NaN or Inf in {bad} sample(s); clean or drop them first")


def _check_convertible(t: torch.Tensor, dtype: torch.dtype, name: str) -> None:
    """Refuse values that a float32 copy would not keep: beyond float32's range, or ints beyond 2**24."""
    if dtype != torch.float32 or t.dtype == torch.float32 or t.numel() == 0:
        return
    peak = 1.0 if t.dtype == torch.bool else max(abs(float(t.max())), abs(float(t.min())))  # no full-size temporary
    if t.is_floating_point() and peak > _F32_MAX:
        raise InvalidInputError(f"{name} hold values up to {peak:.3g}, beyond float32's range ({_F32_MAX:.3g}); rescale them")
    if not t.is_floating_point() and peak > _F32_EXACT_INT:
        raise InvalidInputError(f"{name} hold integers up to {int(peak)}, which float32 cannot represent exactly (limit 2**24); rescale them")


def as_pool_inputs(inputs: Any, name: str = "pool inputs", *, dtype: torch.dtype | None = torch.float32) -> torch.Tensor:
    """Convert a pool's inputs (array or tensor, ``N x ...``) to a finite tensor of ``dtype``, or refuse them.

    Decisions (before any state exists):

    * numpy arrays become tensors; ``dtype`` (default float32, the dtype of the
      library's models) is applied to every real dtype: float64 rounds to the
      nearest float32 (relative error <= 2**-24, below what a float32 model
      resolves); ints and bools become float32 exactly (ints up to 2**24,
      larger ones are refused); ``dtype=None`` keeps the input's dtype;
    * values beyond float32's range, NaN and Inf (numpy and torch alike) are
      refused;
    * 0-D and 1-D inputs are refused (a 1-D array is ambiguous: N scalar
      features, or one flattened sample); complex, string and object arrays
      are refused.
    """
    t = _to_tensor(inputs, name)
    if t.ndim < 2:
        raise InvalidInputError(
            f"{name} must have one row per sample (N x d, or N x C x H x W), got shape {tuple(t.shape)}; "
            "for one feature per sample pass x.reshape(-1, 1)"
        )
    if t.is_complex():
        raise InvalidInputError(f"{name} must be real, got dtype {t.dtype}")
    if t.shape[0] == 0:
        raise InvalidInputError("the pool is empty; pass at least one sample")
    if t.is_floating_point():
        _check_finite(t, name)
    if dtype is not None:
        _check_convertible(t, dtype, name)
        t = t.to(dtype)
    return t


def as_integral_indices(values: Any, name: str, *, error: type[Exception] = InvalidInputError) -> np.ndarray:
    """Convert indices to a 1-D int64 array; floats are accepted only when integral, never truncated.

    Booleans are refused (a mask passed where indices are expected would
    silently become indices 0 and 1); so are NaN, non-integral floats and
    non-numeric values.  ``error`` is the exception type to raise.
    """
    arr = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if arr.ndim != 1:
        raise error(f"{name} must be a 1-D array of ints, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            raise error(f"{name} must be integral; got {int(bad.sum())} non-integral value(s), e.g. {arr[bad][0].item()!r}; indices are never truncated")
        return arr.astype(np.int64)
    raise error(f"{name} must be a 1-D array of ints, got dtype {arr.dtype}" + ("; a boolean mask is not a list of indices: use np.flatnonzero(mask)" if arr.dtype.kind == "b" else ""))


def _check_target_vector(label: Any, where: str) -> Any:
    """A multi-output regression target: an array of finite real numbers (returned as float64)."""
    arr = label.detach().cpu().numpy() if isinstance(label, torch.Tensor) else np.asarray(label)
    if arr.dtype.kind not in "iuf" or not np.isfinite(arr).all():
        raise InvalidInputError(f"label {label!r} for {where} must hold finite numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def check_label(label: Any, *, task: str, num_classes: int | None, where: str, allow_vector: bool = False) -> Any:
    """One label given by an oracle: a class index (classification) or a finite number (regression).

    Classification takes ints, and floats only when integral (``2.0`` -> 2;
    ``1.7`` is refused, never truncated); booleans are refused for both tasks.
    With ``allow_vector`` (pools that store multi-output targets), regression
    also takes a vector of finite numbers.
    Returns the label as ``int``, ``float`` or a float64 array.
    """
    if isinstance(label, np.generic):
        label = label.item()  # numpy scalars as Python numbers (also in messages)
    if allow_vector and task != "classification" and isinstance(label, (np.ndarray, torch.Tensor, list, tuple)):
        return _check_target_vector(label, where)
    if isinstance(label, bool) or not isinstance(label, numbers.Real):
        raise InvalidInputError(f"label {label!r} for {where} is not a number; give a class index or a target value")
    value = float(label)
    if not math.isfinite(value):
        raise InvalidInputError(f"label {label!r} for {where} is not finite")
    if task != "classification":
        return value
    if not isinstance(label, numbers.Integral) and not value.is_integer():
        raise InvalidInputError(f"label {label!r} for {where} is not a class index (an int); floats are never truncated")
    if num_classes is not None and not (0 <= value < num_classes):
        raise InvalidInputError(f"label {label!r} for {where} is outside 0..{num_classes - 1}")
    return int(value)


def as_test_set(test: Any, *, task: str, num_classes: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Check and convert a test set ``(inputs, targets)``: inputs as the pool's, targets in range.

    A map-style Dataset of ``(input, target)`` items is read once into tensors,
    each item under RNGs seeded by its index (:func:`activelearn.dataio.read_pairs`),
    so a Dataset with random transforms gives the same test set every time.

    Classification targets must be class indices in ``0..num_classes - 1``
    (integral floats are accepted; a target out of range would silently
    count as wrong); regression targets must be finite.
    """
    if isinstance(test, torch.utils.data.Dataset) and not isinstance(test, (tuple, list)):
        test = read_pairs(test)  # a map-style Dataset of (input, target) items, read once (seeded per item)
    if not isinstance(test, (tuple, list)) or len(test) != 2:
        raise InvalidInputError(f"test must be a pair (inputs, targets) or a Dataset of (input, target) items, got {type(test).__name__}")
    x = as_pool_inputs(test[0], "test inputs")
    y = _to_tensor(test[1], "test targets")
    if len(x) != len(y):
        raise InvalidInputError(f"test inputs and targets differ in length: {len(x)} vs {len(y)}")
    if y.is_floating_point() and not bool(torch.isfinite(y).all()):
        raise InvalidInputError("test targets hold NaN or Inf; clean or drop those samples")
    return (x, _class_targets(y, num_classes)) if task == "classification" else (x, y)


def _class_targets(y: torch.Tensor, num_classes: int | None) -> torch.Tensor:
    """Test targets of a classification task as int64 class indices, each in ``0..num_classes - 1``."""
    if y.ndim != 1 or y.dtype == torch.bool or (y.is_floating_point() and bool((y != y.round()).any())):
        raise InvalidInputError(f"test targets of a classification task must be a 1-D array of class indices, got dtype {y.dtype} shape {tuple(y.shape)}")
    y = y.long()
    if num_classes is not None and y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise InvalidInputError(
            f"test targets must be class indices in 0..{num_classes - 1}, got values {int(y.min())}..{int(y.max())}; "
            "an out-of-range target would count as a wrong prediction"
        )
    return y
