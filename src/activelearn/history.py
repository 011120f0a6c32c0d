"""The books of a run: one record per cycle, saved to JSON/CSV, plotted, compared."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .exceptions import InvalidInputError

__all__ = ["CycleRecord", "History", "comparison_table", "plot_curves", "cost_per_accuracy", "to_plain"]


def cost_per_accuracy(cost: float | np.ndarray, accuracy: float | np.ndarray) -> float | np.ndarray:
    """Cumulative annotation cost divided by test accuracy in percent.

    The definition that reproduces Table 2 of Kim, Kim & Hwang (e.g. cost 406 at
    96.65% gives 4.20; 6,582 at 96.80% gives 68.00).  ``accuracy`` is a fraction
    in [0, 1].
    """
    return np.asarray(cost, dtype=float) / (np.asarray(accuracy, dtype=float) * 100.0) if np.ndim(cost) else float(cost) / (float(accuracy) * 100.0)



@dataclass
class CycleRecord:
    """What happened in one cycle: train on the labeled set, evaluate, select.

    ``n_labeled``, ``interactions`` and ``cost`` are the books at training time;
    ``selected`` are the indices this cycle's model chose (empty in the last
    cycle), and ``select_seconds`` the time it took.
    """

    cycle: int
    n_labeled: int
    interactions: int
    cost: float
    metrics: dict[str, float]
    train_seconds: float = 0.0
    select_seconds: float = 0.0
    selected: list[int] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class History:
    """Per-cycle records of one run plus its metadata (strategy, seed, dataset...)."""

    records: list[CycleRecord] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def append(self, record: CycleRecord) -> None:
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> CycleRecord:
        return self.records[i]

    def metric(self, name: str = "accuracy") -> np.ndarray:
        """One metric per cycle (NaN where missing)."""
        return np.array([r.metrics.get(name, np.nan) for r in self.records], dtype=float)

    def column(self, name: str) -> np.ndarray:
        """A numeric field per cycle (``n_labeled``, ``cost``...) or an ``extra`` key."""
        return np.array([getattr(r, name) if hasattr(r, name) else r.extra.get(name, np.nan) for r in self.records], dtype=float)

    def cost_per_accuracy(self, metric: str = "accuracy") -> np.ndarray:
        """Per cycle: cumulative cost / (metric in percent); see :func:`cost_per_accuracy`."""
        return np.asarray(cost_per_accuracy(self.column("cost"), self.metric(metric)))

    # ------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {"meta": self.meta, "records": [asdict(r) for r in self.records]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "History":
        return cls(records=[CycleRecord(**r) for r in data["records"]], meta=dict(data.get("meta", {})))

    def state_dict(self) -> dict[str, Any]:
        """Records and meta as plain data (numpy values become Python numbers and lists)."""
        return to_plain(self.to_dict())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replace records and meta, in place, with a saved :meth:`state_dict`."""
        loaded = History.from_dict(state)
        self.records, self.meta = loaded.records, loaded.meta

    def save_json(self, path: str | os.PathLike[str]) -> Path:
        """Write the whole history (atomically: temp file then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        with open(tmp, "w") as f:
            json.dump(self.to_dict(), f, indent=1, default=_json_default)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

    @classmethod
    def load_json(cls, path: str | os.PathLike[str]) -> "History":
        """Read a file written by :meth:`save_json`.

        Raises
        ------
        InvalidInputError
            The file cannot be read, is not JSON, or is not a saved History
            (the message names the file and what is wrong with it).
        """
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InvalidInputError(f"cannot read a History from {path}: {exc}; pass a history.json written by History.save_json") from exc
        try:
            return cls.from_dict(data)
        except (AttributeError, KeyError, TypeError) as exc:
            raise InvalidInputError(
                f"{path} is not a saved History (a JSON object with 'records', each holding cycle, n_labeled, "
                f"interactions, cost, metrics): {type(exc).__name__}: {exc}"
            ) from exc

    def save_csv(self, path: str | os.PathLike[str]) -> Path:
        """One row per cycle: books, metrics, timings, extras (selected indices left out)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        metric_keys = sorted({k for r in self.records for k in r.metrics})
        extra_keys = sorted({k for r in self.records for k in r.extra})
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["cycle", "n_labeled", "interactions", "cost", *metric_keys, "train_seconds", "select_seconds", "n_selected", *extra_keys])
            for r in self.records:
                w.writerow([r.cycle, r.n_labeled, r.interactions, r.cost, *[r.metrics.get(k, "") for k in metric_keys], f"{r.train_seconds:.3f}", f"{r.select_seconds:.3f}", len(r.selected), *[r.extra.get(k, "") for k in extra_keys]])
        return path

    def table(self, metric: str | None = None) -> str:
        """A plain-text per-cycle table (what the CLI prints)."""
        metric = metric or _default_metric(self)
        lines = [f"{'cycle':>5} {'labeled':>8} {'cost':>8} {metric:>9} {'train s':>8} {'select s':>8}"]
        for r in self.records:
            v = r.metrics.get(metric, float("nan"))
            lines.append(f"{r.cycle:>5} {r.n_labeled:>8} {r.cost:>8.0f} {v:>9.4f} {r.train_seconds:>8.2f} {r.select_seconds:>8.2f}")
        return "\n".join(lines)

    def plot(self, path: str | os.PathLike[str] | None = None, *, x: str = "n_labeled", metric: str | None = None, ax: Any = None, label: str | None = None) -> Any:
        """Learning curve (needs matplotlib: ``pip install activelearn[plot]``)."""
        return plot_curves({label or self.meta.get("strategy", "run"): [self]}, path, x=x, metric=metric, ax=ax)


def _default_metric(h: History) -> str:
    keys = [k for r in h.records for k in r.metrics]
    return next((k for k in ("accuracy", "mse") if k in keys), keys[0] if keys else "accuracy")


def to_plain(obj: Any) -> Any:
    """JSON round trip: numpy scalars and arrays become Python numbers and lists, tuples lists."""
    return None if obj is None else json.loads(json.dumps(obj, default=_json_default))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot serialise {type(o).__name__}")


def comparison_table(runs: Mapping[str, Sequence[History]], *, metric: str = "accuracy", reference: Mapping[str, Sequence[float]] | None = None, scale: float = 100.0, digits: int = 1) -> str:
    """Markdown table: one row per strategy, mean ± std over runs per cycle (``digits`` decimals; 3 suit an MSE).

    ``reference`` adds rows of published numbers (e.g. a paper's table) beside ours.
    """
    n_cycles = max(len(h) for hs in runs.values() for h in hs)
    first = next(iter(runs.values()))[0]
    labels = [str(r.n_labeled) for r in first.records] + [""] * (n_cycles - len(first))
    head = "| strategy | " + " | ".join(labels) + " |"
    sep = "|---|" + "---:|" * n_cycles
    rows = [head, sep]
    for name, hs in runs.items():
        vals = np.full((len(hs), n_cycles), np.nan)
        for i, h in enumerate(hs):
            m = h.metric(metric)
            vals[i, : len(m)] = m * scale
        mean = np.nanmean(vals, axis=0)
        std = np.nanstd(vals, axis=0)
        cells = [f"{m:.{digits}f}" + (f" ± {s:.{digits}f}" if len(hs) > 1 else "") for m, s in zip(mean, std)]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    for name, ref in (reference or {}).items():
        cells = [f"{v:.1f}" for v in ref] + [""] * (n_cycles - len(ref))
        rows.append(f"| {name} | " + " | ".join(cells[:n_cycles]) + " |")
    return "\n".join(rows)


def plot_curves(runs: Mapping[str, Sequence[History]], path: str | os.PathLike[str] | None = None, *, x: str = "n_labeled", metric: str | None = None, ax: Any = None, logx: bool = False) -> Any:
    """Mean learning curve with a ±1 std band per strategy; saves a PNG when ``path`` is given.

    Never changes matplotlib's backend.  With ``path`` and no ``ax`` the curve is
    drawn on a standalone :class:`matplotlib.figure.Figure` (not registered with
    pyplot, so nothing is shown or left open); with neither, on a new pyplot
    figure (shown inline in a notebook); with ``ax``, on that axes.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install 'activelearn[plot]'") from exc
    if ax is None and path is not None:
        fig = Figure(figsize=(6, 4))
        ax = fig.subplots()
    elif ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
    else:
        fig = ax.figure
    for name, hs in runs.items():
        metric_name = metric or _default_metric(hs[0])
        n = min(len(h) for h in hs)
        xs = hs[0].column(x)[:n]
        ys = np.stack([h.metric(metric_name)[:n] for h in hs])
        m, s = ys.mean(0), ys.std(0)
        ax.plot(xs, m, marker="o", label=name)
        if len(hs) > 1:
            ax.fill_between(xs, m - s, m + s, alpha=0.2)
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel(metric or "accuracy")
    if logx:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    if path is not None:
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    return ax

