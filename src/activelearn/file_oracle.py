"""An oracle driven by a person (or a labeling tool) through files.

For each query the :class:`FileOracle` writes, in its directory,

* ``query_<id>.json``: the cycle, the pool indices to label, and the name of
  the answers file it expects; with ``inputs`` given, also
* ``query_<id>/<index>.png`` (one image per sample) and
  ``query_<id>/contact_sheet.png`` (all of them in a captioned grid), or
  ``query_<id>/features.csv`` when the inputs are not images,

and then reads ``answers_<id>.csv`` or ``answers_<id>.json``::

    index,label            # CSV; optional columns: in_task (true/false), cost
    17,3
    204,0
    311,,false             # not in the task: no label

    [{"index": 17, "label": 3}, {"index": 311, "label": null, "in_task": false}]
    {"17": 3, "204": 0}    # JSON: a list of rows, or index -> label

If the answers are not there yet it waits up to ``timeout`` seconds and then
raises :class:`~activelearn.exceptions.AnswersPending`; the loop has saved a
checkpoint before asking, so ``activelearn run --resume OUT`` (or
``ActiveLoop.resume``) asks the same query again and picks the file up.  A file
with an unknown or duplicate index, a label outside ``0..C-1``, or missing
answers is refused as a whole with
:class:`~activelearn.exceptions.AnswersInvalid` listing each bad row; fix the
file and resume.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import numbers
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ._validation import Interval, check_params
from .checkpoint import atomic_write_text
from .exceptions import AnswersInvalid, AnswersPending, InvalidParameterError, OracleError, OutputError
from .oracle import Query
from .pools import Answer

__all__ = ["FileOracle"]

_FILE_ORACLE_CONSTRAINTS: dict[str, list[Any]] = {
    "num_classes": [Interval(numbers.Integral, 2), None],
    "timeout": [Interval(numbers.Real, 0)],
    "poll": [Interval(numbers.Real, 0)],
    "cost": [Interval(numbers.Real, 0)],
}
_FALSE = {"false", "0", "no", "n", "f"}
_TRUE = {"true", "1", "yes", "y", "t", ""}


class FileOracle:
    """Writes each query to a directory and reads the answers a person writes back.

    Parameters
    ----------
    directory : path
        Where queries are written and answers are read (created if needed).
    num_classes : int, optional
        Labels must be ints in ``0..num_classes - 1`` (classification); without
        it labels may be any finite number (regression).
    timeout : float
        Seconds to wait for the answers file (polling every ``poll`` seconds);
        0 (default) checks once and raises ``AnswersPending`` at once.
    poll : float
        Seconds between two looks at the directory while waiting.
    inputs : torch.Tensor, optional
        The pool's inputs: when given, each query also gets one PNG per sample
        and a contact sheet (image-like inputs), or a ``features.csv``.
    image_shape : tuple of int, optional
        Reshape one input to this before drawing (e.g. ``(8, 8)`` for the
        flattened digits); default: the input's own shape.
    cost : float
        Cost charged per answer when the file gives none.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        num_classes: int | None = None,
        timeout: float = 0.0,
        poll: float = 1.0,
        inputs: torch.Tensor | np.ndarray | None = None,
        image_shape: Sequence[int] | None = None,
        cost: float = 1.0,
    ) -> None:
        check_params({"num_classes": num_classes, "timeout": timeout, "poll": poll, "cost": cost}, _FILE_ORACLE_CONSTRAINTS)
        if poll == 0 and timeout > 0:
            raise InvalidParameterError("poll must be > 0 when timeout > 0")
        self.directory = Path(directory)
        self.num_classes = num_classes
        self.timeout = float(timeout)
        self.poll = float(poll)
        self.inputs = inputs
        self.image_shape = tuple(int(s) for s in image_shape) if image_shape is not None else None
        self.cost = float(cost)

    # ------------------------------------------------------------------ names
    @staticmethod
    def query_id(query: Query) -> str:
        """``c<cycle>-<6 hex digits of the indices>``: stable across runs, unique per batch."""
        idx = np.asarray(query.indices, dtype=np.int64)
        digest = hashlib.sha1(idx.tobytes()).hexdigest()[:6]
        return f"c{int(query.cycle):03d}-{digest}"

    def query_file(self, query: Query) -> Path:
        return self.directory / f"query_{self.query_id(query)}.json"

    def answer_files(self, query: Query) -> list[Path]:
        """The answers files looked for, in order (CSV first)."""
        qid = self.query_id(query)
        return [self.directory / f"answers_{qid}.csv", self.directory / f"answers_{qid}.json"]

    # ----------------------------------------------------------------- answer
    def answer(self, query: Query) -> list[Answer]:
        """Write the query (once), then read and validate its answers file.

        Raises
        ------
        AnswersPending
            No answers file appeared within ``timeout`` seconds.
        AnswersInvalid
            The answers file is malformed, names samples that were not asked,
            repeats one, gives a label out of range, or leaves some unanswered.
        """
        if len(query.groups):
            raise OracleError("FileOracle answers sample queries only; cluster queries need a cluster-capable oracle")
        idx = np.asarray(query.indices, dtype=np.int64)
        self._write_query(query, idx)
        deadline = time.monotonic() + self.timeout
        while True:
            found = [p for p in self.answer_files(query) if p.is_file()]
            if len(found) > 1:
                raise AnswersInvalid(f"both {found[0].name} and {found[1].name} exist for one query; keep one of them")
            if found:
                return self._read_answers(found[0], idx, query.cycle)
            if time.monotonic() >= deadline:
                break
            time.sleep(min(self.poll, max(deadline - time.monotonic(), 0.0)))
        csv_path, json_path = self.answer_files(query)
        raise AnswersPending(
            f"query of cycle {query.cycle} ({idx.size} samples) written to {self.query_file(query)}; "
            f"write the labels to {csv_path} (CSV with columns index,label) or {json_path}, "
            "then resume the run (activelearn run --resume OUT)"
        )

    # ------------------------------------------------------------------ write
    def _write_query(self, query: Query, idx: np.ndarray) -> None:
        path = self.query_file(query)
        csv_path, json_path = self.answer_files(query)
        payload = {"cycle": int(query.cycle), "indices": idx.tolist(), "answers_csv": csv_path.name, "answers_json": json_path.name,
                   "num_classes": self.num_classes}
        if path.is_file():
            try:
                if json.loads(path.read_text()).get("indices") == payload["indices"]:
                    return
            except (OSError, ValueError):
                pass
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if self.inputs is not None:
                self._write_inputs(path.with_suffix(""), idx)
            atomic_write_text(path, json.dumps(payload, indent=1))
        except OSError as exc:
            raise OutputError(
                f"cannot write the query {path}: {exc.strerror or exc}; free space or make {self.directory} writable "
                "(or choose another oracle folder), then resume the run"
            ) from exc

    def _write_inputs(self, folder: Path, idx: np.ndarray) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        x = torch.as_tensor(self.inputs[torch.as_tensor(idx)] if isinstance(self.inputs, torch.Tensor) else np.asarray(self.inputs)[idx])
        x = x.detach().float().cpu()
        shape = self.image_shape or tuple(x.shape[1:])
        if len(shape) not in (2, 3) or int(np.prod(shape)) != x[0].numel():
            with open(folder / "features.csv", "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["index", *[f"x{j}" for j in range(x[0].numel())]])
                for i, row in zip(idx, x.reshape(len(idx), -1).tolist()):
                    w.writerow([int(i), *row])
            return
        try:  # standalone Figure and image.imsave: no pyplot state, the backend is left alone
            from matplotlib.figure import Figure
            from matplotlib.image import imsave
        except ImportError:  # pragma: no cover - depends on the environment
            np.save(folder / "inputs.npy", x.numpy())
            return
        images = [self._to_image(xi.reshape(shape)) for xi in x]
        for i, img in zip(idx, images):
            imsave(folder / f"{int(i)}.png", img, cmap="gray" if img.ndim == 2 else None)
        cols = min(10, len(images))
        rows = math.ceil(len(images) / cols)
        fig = Figure(figsize=(1.2 * cols, 1.4 * rows))
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        for ax, i, img in zip(axes.ravel(), idx, images):
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
            ax.set_title(str(int(i)), fontsize=8)
        fig.tight_layout()
        fig.savefig(folder / "contact_sheet.png", dpi=80)

    @staticmethod
    def _to_image(x: torch.Tensor) -> np.ndarray:
        a = x.numpy()
        if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
            a = np.moveaxis(a, 0, -1)
        if a.ndim == 3 and a.shape[-1] == 1:
            a = a[..., 0]
        lo, hi = float(a.min()), float(a.max())
        return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)

    # ------------------------------------------------------------------- read
    def _rows(self, path: Path) -> list[tuple[str, dict[str, Any]]]:
        """(where, row) pairs; ``where`` names the row for error messages."""
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise AnswersInvalid(f"cannot read {path}: {exc}; write it as UTF-8 text and resume") from exc
        return _json_rows(path, text) if path.suffix == ".json" else _csv_rows(path, text)

    def _read_answers(self, path: Path, idx: np.ndarray, cycle: int) -> list[Answer]:
        asked = set(idx.tolist())
        problems: list[str] = []
        answers: dict[int, Answer] = {}
        for where, row in self._rows(path):
            answer = self._parse_row(where, row, asked, answers, problems)
            if answer is not None:
                answers[answer.index] = answer
        missing = sorted(asked - set(answers))
        if missing and not problems:
            problems.append(f"{len(missing)} queried sample(s) have no answer, e.g. {missing[:5]}")
        if problems:
            shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
            raise AnswersInvalid(f"{path} refused, nothing was recorded: {shown}. Fix the file and resume the run")
        return [answers[int(i)] for i in idx]

    def _parse_row(self, where: str, row: dict[str, Any], asked: set[int], answers: dict[int, Answer], problems: list[str]) -> Answer | None:
        """One row's answer, or None after appending what is wrong with it to ``problems``."""
        try:
            i = int(str(row.get("index")).strip())
        except ValueError:
            problems.append(f"{where}: index {row.get('index')!r} is not an integer")
            return None
        if i not in asked or i in answers:
            problems.append(f"{where}: index {i} " + ("was not in this query" if i not in asked else "is answered twice"))
            return None
        raw_in = row.get("in_task", True)
        if not isinstance(raw_in, bool) and str(raw_in).strip().lower() not in _FALSE | _TRUE:
            problems.append(f"{where}: in_task {raw_in!r} is not true/false")
            return None
        in_task = raw_in if isinstance(raw_in, bool) else str(raw_in).strip().lower() not in _FALSE
        label = self._parse_label(row.get("label"), in_task, where, problems)
        cost = self._parse_cost(row.get("cost"), where, problems)
        if label is _BAD or cost is None:
            return None
        return Answer(i, label, in_task, cost, "sample")

    def _parse_cost(self, raw: Any, where: str, problems: list[str]) -> float | None:
        if raw is None or raw == "":
            return self.cost
        try:
            cost = float(raw) if not isinstance(raw, bool) else math.nan
        except (TypeError, ValueError):
            cost = math.nan
        if not math.isfinite(cost) or cost < 0:
            problems.append(f"{where}: cost {raw!r} must be a number >= 0")
            return None
        return cost

    def _parse_label(self, raw: Any, in_task: bool, where: str, problems: list[str]) -> Any:
        empty = raw is None or (isinstance(raw, str) and raw.strip() == "")
        if not in_task:
            return None
        if empty:
            problems.append(f"{where}: label is missing (write in_task=false to decline a sample)")
            return _BAD
        try:
            value = float(str(raw).strip()) if not isinstance(raw, (int, float)) or isinstance(raw, bool) else float(raw)
        except ValueError:
            problems.append(f"{where}: label {raw!r} is not a number")
            return _BAD
        if isinstance(raw, bool) or not math.isfinite(value):
            problems.append(f"{where}: label {raw!r} is not a finite number")
            return _BAD
        if self.num_classes is None:
            return value
        if value != int(value) or not (0 <= value < self.num_classes):
            problems.append(f"{where}: label {raw!r} is outside 0..{self.num_classes - 1}")
            return _BAD
        return int(value)

    # ------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Nothing to save: every answer lives in files (and in the pools once recorded)."""
        return {"directory": str(self.directory)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Accept a saved state (the directory is the constructor's)."""


_BAD = object()


def _json_rows(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise AnswersInvalid(f"{path.name} is not valid JSON ({exc}); fix the file and resume") from exc
    if isinstance(data, dict):
        return [(f"key {k!r}", {"index": k, "label": v}) for k, v in data.items()]
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        return [(f"item {i}", r) for i, r in enumerate(data)]
    raise AnswersInvalid(f"{path.name} must hold a list of {{'index', 'label'}} objects or an index -> label object, got {type(data).__name__}")


def _csv_rows(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        reader = csv.DictReader(text.removeprefix("\ufeff").splitlines())  # spreadsheets write a byte order mark
        fields = [f.strip() for f in (reader.fieldnames or [])]
        if "index" not in fields or "label" not in fields:
            raise AnswersInvalid(f"{path.name} needs a header row with columns index,label (optional: in_task, cost); got {fields}")
        return [(f"row {n}", {k.strip(): v for k, v in r.items() if k is not None}) for n, r in enumerate(reader, start=2)]
    except csv.Error as exc:
        raise AnswersInvalid(f"{path.name} is not a valid CSV file ({exc}); fix the file and resume") from exc
