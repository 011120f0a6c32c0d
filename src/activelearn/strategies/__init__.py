"""Acquisition strategies and their registry.

>>> from activelearn import strategies
>>> strategies.available()[:3]  # doctest: +SKIP
>>> s = strategies.get("entropy", subset=10_000)
"""

from __future__ import annotations

from .base import ScoreStrategy, Strategy, check_budget, top_k
from .registry import available, get, get_class, register, register_composer
from . import baselines as _baselines  # noqa: F401  (registers the built-ins)
from . import coreset as _coreset  # noqa: F401
from . import combine as _combine  # noqa: F401
from . import dacs as _dacs  # noqa: F401
from .dacs import DACS, dacs_select
from . import learning_loss as _learning_loss  # noqa: F401
from . import ncenet as _ncenet  # noqa: F401
from . import ibal as _ibal  # noqa: F401
from . import cluster as _cluster  # noqa: F401
from .cluster import ClusterAnnotation
from .ibal import IBAL, IBALD, EntropyD
from .combine import ExpandSqueeze
from .baselines import Entropy, LeastConfidence, Margin, RandomSampling
from .coreset import CoreSet
from .learning_loss import LearningLoss
# MC-dropout and adversarial baselines (issue 15): BALD, BatchBALD, VAAL
from .bald import BALD, BatchBALD
from .vaal import VAAL
from .ncenet import NCENet
from .baselines import BEntropy
from . import contrastive as _contrastive  # noqa: F401
from .contrastive import ContrastiveDistance, ContrastiveRandom
# standard baselines (issue 15): BADGE, CDAL, TypiClust
from .badge import BADGE
from .cdal import CDAL
from .typiclust import TypiClust

__all__ = [
    "Strategy",
    "ScoreStrategy",
    "check_budget",
    "top_k",
    "available",
    "get",
    "get_class",
    "register",
    "register_composer",
    "RandomSampling",
    "Entropy",
    "LeastConfidence",
    "Margin",
    "CoreSet",
    "LearningLoss",
    "BALD",
    "BatchBALD",
    "VAAL",
    "NCENet",
    "BEntropy",
    "ExpandSqueeze",
    "DACS",
    "dacs_select",
    "ContrastiveDistance",
    "ContrastiveRandom",
    "IBAL",
    "IBALD",
    "EntropyD",
    "ClusterAnnotation",
    "BADGE",
    "CDAL",
    "TypiClust",
]
