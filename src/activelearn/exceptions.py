"""The library's own exception types.

Every error raised on bad input is one of these, so callers can catch
``ActiveLearnError`` for everything, or the built-in base (``ValueError``,
``RuntimeError``, ``FileNotFoundError``) they already expect.  Messages say what
was received and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "ActiveLearnError",
    "InvalidParameterError",
    "InvalidInputError",
    "SelectionError",
    "OracleError",
    "DatasetNotFoundError",
    "UnknownStrategyError",
    "CheckpointError",
    "OutputError",
    "AnswersPending",
    "AnswersInvalid",
    "OutputLockedError",
    "OutputWriteError",
]


class ActiveLearnError(Exception):
    """Base class of every exception raised by activelearn."""


class InvalidParameterError(ActiveLearnError, ValueError):
    """A hyperparameter or argument has the wrong type or value."""


class InvalidInputError(ActiveLearnError, ValueError):
    """Data (features, targets, indices) is malformed: NaN, wrong shape, out of range."""


class UnknownStrategyError(ActiveLearnError, KeyError):
    """A strategy name is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SelectionError(ActiveLearnError, RuntimeError):
    """A strategy returned an invalid selection (duplicates, labeled indices, wrong count)."""


class OracleError(ActiveLearnError, RuntimeError):
    """The oracle could not answer a query, or answered something invalid."""


class DatasetNotFoundError(ActiveLearnError, FileNotFoundError):
    """A dataset root does not hold the expected files."""


class CheckpointError(ActiveLearnError, RuntimeError):
    """A checkpoint is missing, unreadable, or does not match the run it is loaded into."""


class OutputError(ActiveLearnError, OSError):
    """An output file or folder cannot be written: disk full, read-only file system, no permission.

    The message names the path, the system's reason and what to do; whatever
    was written before stays consistent (writes are atomic).
    """


class AnswersPending(OracleError):
    """A file-based oracle wrote a query and no answers file exists yet.

    Not a failure: the run stopped cleanly after saving a checkpoint; write the
    answers file named in the message and resume the run.
    """


class AnswersInvalid(OracleError):
    """An answers file names unknown or duplicate indices, bad labels, or misses answers."""


class OutputLockedError(ActiveLearnError, RuntimeError):
    """Another process (or thread) is writing to the same output folder."""


class OutputWriteError(ActiveLearnError, OSError):
    """The output folder cannot be written (read-only, full disk, no permission)."""
