"""Numeric kernels used by the strategies, usable on their own.

All kernels run batched in torch on a chosen device with memory bounded by a
chunk size (never an N x N matrix).  Names are imported lazily so that
``import activelearn.ops`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "kcenter_greedy": "kcenter",
    "min_distances": "kcenter",
    "kcenter_greedy_distributed": "kcenter_dist",
    "jenks_breaks": "jenks",
    "jenks_labels": "jenks",
    "lsh_density": "density",
    "knn_density": "density",
    "kmeans": "clustering",
    "with_bias": "representer",
    "cross_entropy_logit_grad": "representer",
    "representer_alpha": "representer",
    "representer_values": "representer",
    "ibal_scores": "representer",
    "badge_kmeanspp": "badge",
    "gradient_factors": "badge",
    "symmetric_kl": "symkl",
    "symkl_kcenter": "symkl",
    "knn_typicality": "typicality",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'activelearn.ops' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
