"""activelearn: deep active learning in PyTorch.

The pieces: :class:`Pools` (who is labeled), an :class:`Oracle` (who answers),
:class:`ALModel` (a backbone plus strategy-owned heads), :class:`Trainer`,
a :class:`~activelearn.strategies.Strategy` and the :class:`ActiveLoop` that
runs them, returning a :class:`History`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import backbones, datasets, ops, strategies
from . import configs, experiment
from .exceptions import (
    ActiveLearnError,
    AnswersInvalid,
    AnswersPending,
    CheckpointError,
    DatasetNotFoundError,
    InvalidInputError,
    InvalidParameterError,
    OracleError,
    SelectionError,
    UnknownStrategyError,
)
from .history import CycleRecord, History, comparison_table, plot_curves
from .loop import ActiveLoop, validate_selection
from .model import ALModel, ForwardOutput, ModelExtension
from .file_oracle import FileOracle
from .oracle import Oracle, Query, SimulatedOracle
from .pools import Annotation, Answer, Pools
from .trainer import TrainConfig, Trainer, evaluate

__all__ = [
    "__version__",
    "backbones",
    "datasets",
    "ops",
    "strategies",
    "configs",
    "experiment",
    "ActiveLearnError",
    "AnswersInvalid",
    "AnswersPending",
    "CheckpointError",
    "DatasetNotFoundError",
    "InvalidInputError",
    "InvalidParameterError",
    "OracleError",
    "SelectionError",
    "UnknownStrategyError",
    "CycleRecord",
    "History",
    "comparison_table",
    "plot_curves",
    "ActiveLoop",
    "validate_selection",
    "ALModel",
    "ForwardOutput",
    "ModelExtension",
    "Oracle",
    "Query",
    "SimulatedOracle",
    "FileOracle",
    "Annotation",
    "Answer",
    "Pools",
    "TrainConfig",
    "Trainer",
    "evaluate",
]
