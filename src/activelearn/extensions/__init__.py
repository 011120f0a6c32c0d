"""Model extensions owned by strategies (attached through :meth:`activelearn.ALModel.attach`)."""

from __future__ import annotations

from .auxiliary import AuxiliaryHead
from .loss_prediction import LossPredictionModule, ranking_loss
from .prototype import PrototypeHead
from .vaal import VAALModule

__all__ = ["AuxiliaryHead", "LossPredictionModule", "ranking_loss", "PrototypeHead", "VAALModule"]
