"""The in-memory dataset container shared by every loader, and data-root resolution."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

import torch

from ..exceptions import DatasetNotFoundError, InvalidInputError, InvalidParameterError

__all__ = [
    "DatasetBundle",
    "Task",
    "DATA_ENV_VAR",
    "candidate_roots",
    "find_root",
    "default_download_root",
    "not_found_message",
    "raise_not_found",
]

Task = Literal["classification", "regression"]

#: Environment variable naming a folder that holds one sub-folder per dataset
#: (``mnist/``, ``notmnist/``, ``cifar10/``).
DATA_ENV_VAR = "ACTIVELEARN_DATA"

# src/activelearn/datasets/base.py -> parents[3] is the repository root of a source checkout.
_REPO_ROOT = Path(__file__).resolve().parents[3]


def _source_checkout() -> Path | None:
    """The repository root when the package runs from a source checkout (``src/`` layout), else None.

    A pip-installed package lives in ``site-packages``; three levels up is then a
    Python library folder, not a checkout, and ``<it>/../shared/data`` means nothing.
    """
    here = Path(__file__).resolve()
    if here.parents[1].name == "activelearn" and here.parents[2].name == "src" and (_REPO_ROOT / "pyproject.toml").is_file():
        return _REPO_ROOT
    return None

_FINITE_CHUNK = 1 << 22  # elements checked at once, bounds the temporary bool tensor


def _all_finite(t: torch.Tensor) -> bool:
    """Return whether every element of a floating tensor is finite, in bounded memory."""
    if not t.is_floating_point() or t.numel() == 0:
        return True
    flat = t.reshape(-1)
    for start in range(0, flat.numel(), _FINITE_CHUNK):
        if not bool(torch.isfinite(flat[start : start + _FINITE_CHUNK]).all()):
            return False
    return True


def _check_tensor(name: str, t: Any) -> None:
    """A real-valued tensor with a sample dimension."""
    if not isinstance(t, torch.Tensor):
        raise InvalidInputError(f"{name} must be a torch.Tensor, got {type(t).__name__}; wrap it with torch.as_tensor")
    if t.dtype == torch.bool or t.is_complex():
        raise InvalidInputError(f"{name} must hold real numbers, got dtype {t.dtype}")
    if t.ndim == 0:
        raise InvalidInputError(f"{name} must have a sample dimension, got a scalar")


def _class_targets(name: str, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """1-D int64 class indices in ``0 .. num_classes - 1`` (integral floats converted, other floats refused)."""
    if y.is_floating_point() and y.numel() and not bool((y == y.round()).all()):
        raise InvalidInputError(
            f"{name} must hold integer class labels for classification, got non-integer "
            f"floats (dtype {y.dtype}); use task='regression' for real-valued targets"
        )
    if y.ndim != 1:
        raise InvalidInputError(f"{name} must be 1-D class indices for classification, got shape {tuple(y.shape)}")
    y = y.to(torch.int64)
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise InvalidInputError(
            f"{name} labels must lie in 0..{num_classes - 1} (num_classes="
            f"{num_classes}), got values from {int(y.min())} to {int(y.max())}"
        )
    return y


def _regression_targets(name: str, y: torch.Tensor, num_outputs: int) -> torch.Tensor:
    """float32 targets of shape ``(N,)`` or ``(N, num_outputs)``, all finite."""
    y = y.to(torch.float32)
    if y.ndim not in (1, 2) or (y.ndim == 2 and y.shape[1] != num_outputs):
        raise InvalidInputError(f"{name} must have shape (N,) or (N, {num_outputs}) for regression, got {tuple(y.shape)}")
    if not _all_finite(y):
        raise InvalidInputError(f"{name} holds NaN or Inf; clean or drop those samples")
    return y


@dataclass(frozen=True, eq=False, repr=False)
class DatasetBundle:
    """A labelled train/test split held in memory as model-ready tensors.

    Every loader in :mod:`activelearn.datasets` returns one.  Inputs are already
    normalised; augmentation, if any, is described by :attr:`train_transform` and
    applied by the trainer to one training sample at a time.

    Parameters
    ----------
    name : str
        Short dataset name, e.g. ``"mnist"``.
    train_x : torch.Tensor
        Training inputs, shape ``(N, *input_shape)``.  Stored as float32 (other
        numeric dtypes are converted).
    train_y : torch.Tensor
        Training targets, shape ``(N,)``.  int64 class indices for
        classification; float32 values for regression (shape ``(N,)`` or
        ``(N, num_classes)``).
    test_x : torch.Tensor
        Test inputs, shape ``(M, *input_shape)``; ``M`` may be 0.
    test_y : torch.Tensor
        Test targets, like ``train_y``.
    num_classes : int
        Number of classes; for regression the number of outputs (usually 1).
    task : {"classification", "regression"}
        The learning task.
    input_shape : tuple of int, optional
        Shape of one sample (without the batch dimension); inferred from
        ``train_x`` when left empty, checked against it otherwise.
    train_transform : callable, optional
        Per-sample augmentation ``x -> x'`` on one input tensor of shape
        ``input_shape``; ``None`` (default) means no augmentation.
    meta : dict
        Free-form notes (source folder, construction parameters, ...).

    Raises
    ------
    InvalidInputError
        If tensors have mismatched lengths or shapes, hold NaN/Inf, or class
        labels fall outside ``0 .. num_classes - 1``.
    InvalidParameterError
        If ``task``, ``num_classes``, ``input_shape`` or ``train_transform`` is invalid.

    Notes
    -----
    The dataclass is frozen (fields cannot be re-assigned; use
    :func:`dataclasses.replace`), but tensors and ``meta`` are not copied and
    stay mutable.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    task: Task = "classification"
    input_shape: tuple[int, ...] = ()
    train_transform: Callable[[torch.Tensor], torch.Tensor] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_fields()
        for split in ("train", "test"):
            self._coerce_split(split)
        self._check_shapes()

    def _check_fields(self) -> None:
        """Name, task, num_classes, train_transform and meta."""
        if not isinstance(self.name, str) or not self.name:
            raise InvalidParameterError(f"name must be a non-empty str, got {self.name!r}")
        if self.task not in ("classification", "regression"):
            raise InvalidParameterError(
                f"task must be 'classification' or 'regression', got {self.task!r}"
            )
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise InvalidParameterError(
                f"num_classes must be a positive int (outputs for regression), got {self.num_classes!r}"
            )
        if self.train_transform is not None and not callable(self.train_transform):
            raise InvalidParameterError(
                f"train_transform must be callable or None, got {type(self.train_transform).__name__}"
            )
        if not isinstance(self.meta, dict):
            raise InvalidParameterError(f"meta must be a dict, got {type(self.meta).__name__}")

    def _coerce_split(self, split: str) -> None:
        """Check one split's tensors and store them as float32 inputs and task-typed targets."""
        x = getattr(self, f"{split}_x")
        y = getattr(self, f"{split}_y")
        _check_tensor(f"{split}_x", x)
        _check_tensor(f"{split}_y", y)
        if x.shape[0] != y.shape[0]:
            raise InvalidInputError(
                f"{split}_x has {x.shape[0]} samples but {split}_y has {y.shape[0]}; they must match"
            )
        if self.task == "classification":
            y = _class_targets(f"{split}_y", y, self.num_classes)
        else:
            y = _regression_targets(f"{split}_y", y, self.num_classes)
        x = x.to(torch.float32)  # a float64 beyond float32's range becomes Inf here, so check after
        if not _all_finite(x):
            raise InvalidInputError(f"{split}_x holds NaN or Inf; clean or drop those samples")
        object.__setattr__(self, f"{split}_x", x)  # frozen dataclass: coerce in place
        object.__setattr__(self, f"{split}_y", y)

    def _check_shapes(self) -> None:
        """A non-empty pool with more than one class, and one sample shape across inputs and ``input_shape``."""
        if self.train_x.shape[0] == 0:
            raise InvalidInputError("train_x is empty; a dataset needs at least one training sample")
        if self.task == "classification" and self.train_y.numel() > 1 and bool((self.train_y == self.train_y[0]).all()):
            raise InvalidInputError(
                f"every train_y label is class {int(self.train_y[0])}: a pool with one class gives active learning "
                "nothing to learn; check the labels (or the subset/split) of the dataset"
            )
        sample_shape = tuple(int(s) for s in self.train_x.shape[1:])
        shape = tuple(self.input_shape) if self.input_shape else sample_shape
        if not all(isinstance(s, int) and s > 0 for s in shape):
            raise InvalidParameterError(f"input_shape must be a tuple of positive ints, got {self.input_shape!r}")
        if shape != sample_shape:
            raise InvalidInputError(
                f"input_shape {shape} does not match train_x samples of shape {sample_shape}"
            )
        if tuple(self.test_x.shape[1:]) != sample_shape:
            raise InvalidInputError(
                f"test_x samples have shape {tuple(self.test_x.shape[1:])} but train_x samples have "
                f"{sample_shape}; they must match"
            )
        object.__setattr__(self, "input_shape", shape)

    # ------------------------------------------------------------------ views
    @property
    def num_train(self) -> int:
        """Number of training (pool) samples."""
        return int(self.train_x.shape[0])

    @property
    def num_test(self) -> int:
        """Number of test samples."""
        return int(self.test_x.shape[0])

    def summary(self) -> str:
        """Return a one-line description of the bundle.

        Returns
        -------
        str
            Name, task, classes/outputs, split sizes, sample shape and augmentation.
        """
        what = f"{self.num_classes} classes" if self.task == "classification" else f"{self.num_classes} output(s)"
        aug = "yes" if self.train_transform is not None else "no"
        return (
            f"DatasetBundle(name={self.name!r}, task={self.task}, {what}, train={self.num_train}, "
            f"test={self.num_test}, input_shape={self.input_shape}, augment={aug})"
        )

    def __repr__(self) -> str:
        return self.summary()


# ---------------------------------------------------------------------- roots
def candidate_roots(subdir: str, root: str | os.PathLike[str] | None) -> list[Path]:
    """List the folders searched for a dataset, in order.

    Parameters
    ----------
    subdir : str
        Dataset folder name, e.g. ``"mnist"``.
    root : path-like, optional
        Explicit root.  When given, only ``root`` and ``root / subdir`` are searched.

    Returns
    -------
    list of pathlib.Path
        With ``root=None``: ``$ACTIVELEARN_DATA/<subdir>`` (if the variable is
        set), ``<cwd>/../shared/data/<subdir>``, ``<repo root>/../shared/data/<subdir>``
        (only when the package runs from a source checkout, not when it is
        pip-installed) and ``<cwd>/data/<subdir>``; duplicates removed.
    """
    if root is not None:
        base = Path(root).expanduser()
        cands = [base, base / subdir]
    else:
        cands = []
        env = os.environ.get(DATA_ENV_VAR)
        if env:
            cands.append(Path(env).expanduser() / subdir)
        cwd = Path.cwd()
        checkout = _source_checkout()
        cands.append(cwd.parent / "shared" / "data" / subdir)
        if checkout is not None:
            cands.append(checkout.parent / "shared" / "data" / subdir)
        cands.append(cwd / "data" / subdir)
    out: list[Path] = []
    seen: set[str] = set()
    for c in cands:
        key = os.path.normpath(os.path.abspath(c))
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def default_download_root(subdir: str, root: str | os.PathLike[str] | None) -> Path:
    """Return where ``download=True`` stores a dataset.

    Parameters
    ----------
    subdir : str
        Dataset folder name.
    root : path-like, optional
        Explicit root; used as is when given.

    Returns
    -------
    pathlib.Path
        ``root``, else ``$ACTIVELEARN_DATA/<subdir>``, else ``<cwd>/data/<subdir>``.
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        return Path(env).expanduser() / subdir
    return Path.cwd() / "data" / subdir


def find_root(
    folders: Iterable[Path],
    has_files: Callable[[Path], bool],
) -> Path | None:
    """Return the first folder for which ``has_files`` is true, else ``None``.

    Parameters
    ----------
    folders : iterable of pathlib.Path
        Candidate folders, in priority order.
    has_files : callable
        Predicate telling whether a folder holds the dataset.

    Returns
    -------
    pathlib.Path or None
        The first matching folder.
    """
    for f in folders:
        try:
            if f.is_dir() and has_files(f):
                return f
        except OSError:
            continue
    return None


def not_found_message(
    dataset: str,
    tried: Sequence[Path],
    expected: Sequence[str],
    *,
    subdir: str,
    download_hint: bool = True,
) -> str:
    """Build the message of a :class:`DatasetNotFoundError`.

    Parameters
    ----------
    dataset : str
        Human-readable dataset name.
    tried : sequence of pathlib.Path
        Folders searched.
    expected : sequence of str
        File or folder names expected in one of them.
    subdir : str
        Sub-folder name looked for under ``$ACTIVELEARN_DATA``.
    download_hint : bool, default True
        Whether to suggest downloading (``download=True`` in Python,
        ``--download`` on the command line).

    Returns
    -------
    str
        A message naming what was searched, what was expected and how to fix it.
    """
    lines = [f"{dataset} files not found. Searched these folders:"]
    lines += [f"  - {p.expanduser().absolute()}" for p in tried]
    lines.append("expected these files in one of them: " + ", ".join(expected))
    fixes = [
        "pass root='/path/to/folder' (command line: --data-root /path/to/folder)",
        f"set the environment variable {DATA_ENV_VAR} to a folder holding '{subdir}/'",
    ]
    if download_hint:
        fixes.append("download it: download=True in Python, --download on the command line (needs internet)")
    lines.append("To fix: " + "; or ".join(fixes) + ".")
    return "\n".join(lines)


def raise_not_found(*args: Any, **kwargs: Any) -> NoReturn:
    """Raise :class:`DatasetNotFoundError` with :func:`not_found_message`'s text."""
    raise DatasetNotFoundError(not_found_message(*args, **kwargs))
