"""Model extensions (heads and losses plugged into :class:`~activelearn.model.ALModel`)."""

from __future__ import annotations

from .auxiliary import AuxiliaryHead

__all__ = ["AuxiliaryHead"]
