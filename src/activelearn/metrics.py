"""Summary numbers of learning curves: the area under the budget curve (AUBC) and its spread over seeds.

AUBC (as reported by DeepAL+ and by Zhan et al. 2021, "A comparative survey of
deep active learning") is the area under the curve of a metric against the
number of labels, by the trapezoidal rule, divided by the width of the label
range, so that it is in the metric's own units: a curve that is flat at 0.9
has AUBC 0.9, whatever the budgets.  Unlike "accuracy at the last cycle" it
rewards a strategy that gets there early.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .exceptions import InvalidInputError

__all__ = ["aubc", "mean_ci", "aubc_table"]

#: two-sided 95% Student t quantiles for 1..30 degrees of freedom (then the normal 1.96)
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def aubc(n_labeled: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray) -> float:
    """Normalised area under the curve ``values`` against ``n_labeled`` (trapezoidal rule).

    Parameters
    ----------
    n_labeled : sequence of numbers
        Labeled-set sizes (or cumulative costs), strictly increasing.
    values : sequence of numbers
        The metric at each size (e.g. test accuracy in [0, 1]).

    Returns
    -------
    float
        ``trapz(values, n_labeled) / (n_labeled[-1] - n_labeled[0])``; with one
        point, that point's value.  NaN values are refused, not skipped.
    """
    x = np.asarray(n_labeled, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise InvalidInputError(f"aubc needs two 1-D sequences of equal, non-zero length; got shapes {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise InvalidInputError("aubc got NaN or infinite values; pass only the cycles that were evaluated")
    if x.size == 1:
        return float(y[0])
    if not (np.diff(x) > 0).all():
        raise InvalidInputError(f"aubc needs strictly increasing label counts, got {x.tolist()}")
    area = float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)
    return area / float(x[-1] - x[0])


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its two-sided 95% Student t confidence interval (0 for one value)."""
    if level != 0.95:
        raise InvalidInputError(f"only the 95% interval is tabulated, got level={level!r}")
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise InvalidInputError("mean_ci needs at least one value")
    if v.size == 1:
        return float(v[0]), 0.0
    dof = v.size - 1
    t = _T95[dof - 1] if dof <= len(_T95) else 1.96
    return float(v.mean()), float(t * v.std(ddof=1) / math.sqrt(v.size))


def aubc_table(runs: Mapping[str, Sequence[Any]], *, metric: str = "accuracy", x: str = "n_labeled", scale: float = 100.0) -> str:
    """Markdown table: per strategy the AUBC of each run, its mean and 95% confidence half-width.

    ``runs`` maps a strategy label to its :class:`~activelearn.history.History`
    objects (one per seed), as for :func:`~activelearn.history.comparison_table`.
    Runs of one strategy are cut to their shortest common length.
    """
    rows = ["| strategy | AUBC | ± 95% CI | runs |", "|---|---:|---:|---|"]
    for name, hs in runs.items():
        n = min(len(h) for h in hs)
        per = [aubc(h.column(x)[:n], h.metric(metric)[:n]) * scale for h in hs]
        mean, half = mean_ci(per)
        ci = f"{half:.2f}" if len(per) > 1 else "n/a (1 run)"  # one run has no spread to estimate
        rows.append(f"| {name} | {mean:.2f} | {ci} | {', '.join(f'{v:.2f}' for v in per)} |")
    return "\n".join(rows)
