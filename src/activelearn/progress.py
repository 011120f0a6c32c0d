"""Terminal-aware progress bars (issue 16).

On a terminal (or in a Jupyter notebook) progress is shown as tqdm bars, nested:
the loop's bar over cycles on top, the trainer's bar over epochs and the
model's scoring bar under it (tqdm places a bar opened while another is open
on the next free line).  When the output is not a terminal (CI, ``nohup``, a
log file) bars would write one carriage-return update per step into the log;
:func:`tqdm` then shows nothing and the loop writes one plain line per cycle
instead (:class:`activelearn.callbacks.Progress`).
"""

from __future__ import annotations

import sys
from typing import Any, Iterable, TextIO

__all__ = ["interactive", "tqdm"]


def interactive(stream: TextIO | None = None) -> bool:
    """True when ``stream`` (default: ``sys.stderr``, where tqdm writes) is a terminal or a notebook's output.

    A closed stream, or an object without ``isatty``, counts as not interactive.
    """
    stream = sys.stderr if stream is None else stream
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError, OSError):
        return False
    return type(stream).__module__.split(".")[0] == "ipykernel"  # a notebook cell's output


def tqdm(iterable: Iterable[Any] | None = None, *, file: TextIO | None = None, **kwargs: Any) -> Any:
    """A ``tqdm.auto`` bar over ``iterable`` when ``file`` is :func:`interactive`, else ``iterable`` itself.

    Takes tqdm's keywords (``desc``, ``total``, ``leave``...).  Off a terminal
    nothing is written: no per-update lines in a log file.
    """
    if not interactive(file):
        return iterable
    from tqdm.auto import tqdm as bar

    return bar(iterable, file=file, **kwargs)
