"""Expand-and-squeeze: a candidate strategy proposes, a score keeps the best.

``ExpandSqueeze(candidates, scorer, eta)`` asks ``candidates`` for
``ceil(eta * budget)`` samples (DACS's "expand"), then keeps the ``budget`` of
them with the highest ``scorer`` score ("squeeze").  Any strategy can propose
and any :class:`~activelearn.strategies.ScoreStrategy` can score, and the
registry builds them from names joined by ``+``: ``get("dacs+entropy", eta=2)``
or ``get("coreset+margin")``.  Parameters go to the combination (``eta``,
``seed``) or, prefixed ``first__``/``second__``, to either part
(``get("coreset+entropy", first__metric="cosine")``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..exceptions import InvalidParameterError
from ..oracle import Query
from .base import ScoreStrategy, Strategy, top_k
from .registry import get, get_class, register_composer

if TYPE_CHECKING:
    from ..model import ALModel, ModelExtension
    from ..pools import Pools

__all__ = ["ExpandSqueeze"]


class ExpandSqueeze(Strategy):
    """Candidates from one strategy, the top ``budget`` of them by another's score.

    Parameters
    ----------
    candidates : Strategy
        Proposes ``ceil(eta * budget)`` samples (all unlabeled if fewer remain).
    scorer : ScoreStrategy
        Ranks the candidates; ties go to the lowest index.
    eta : float
        Expansion factor, >= 1 (the DACS paper does not give it; default 2).
    """

    def __init__(self, candidates: Strategy, scorer: ScoreStrategy, *, eta: float = 2.0) -> None:
        self.candidates = candidates
        self.scorer = scorer
        self.eta = eta

    @property
    def requires(self) -> frozenset[str]:  # type: ignore[override]
        return frozenset(self.candidates.requires) | frozenset(self.scorer.requires)

    def validate_params(self) -> None:
        if not isinstance(self.candidates, Strategy):
            raise InvalidParameterError(f"candidates must be a Strategy, got {type(self.candidates).__name__}")
        if not isinstance(self.scorer, ScoreStrategy):
            raise InvalidParameterError(
                f"scorer must be a ScoreStrategy (it ranks candidates by a score), got {type(self.scorer).__name__}"
            )
        if isinstance(self.eta, bool) or not isinstance(self.eta, (int, float)) or not self.eta >= 1:
            raise InvalidParameterError(f"eta must be a number >= 1, got {self.eta!r}")
        self.candidates.validate_params()
        self.scorer.validate_params()

    def model_extensions(self) -> list["ModelExtension"]:
        return [*self.candidates.model_extensions(), *self.scorer.model_extensions()]

    def select(self, model: "ALModel", pools: "Pools", budget: int) -> np.ndarray:
        expanded = min(pools.n_unlabeled, math.ceil(self.eta * budget))
        picked = self.candidates.select(model, pools, expanded)
        if isinstance(picked, Query):
            raise InvalidParameterError(
                f"{self.candidates.name!r} returned a cluster Query, which cannot be squeezed sample by sample; "
                "use a candidate strategy that returns indices (e.g. 'dacs', 'coreset', 'random')"
            )
        cand = np.asarray(picked, dtype=np.int64)
        scores = np.asarray(self.scorer.score(model, pools, cand), dtype=np.float64)
        return top_k(cand, scores, budget)

    def get_params(self) -> dict[str, Any]:
        return {"candidates": self.candidates.name, "scorer": self.scorer.name, "eta": self.eta}

    def state_dict(self) -> dict[str, Any]:
        """Both parts' states."""
        return {"candidates": self.candidates.state_dict(), "scorer": self.scorer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` into both parts."""
        self.candidates.load_state_dict(state.get("candidates", {}))
        self.scorer.load_state_dict(state.get("scorer", {}))


def _build(name: str, **params: Any) -> ExpandSqueeze:
    parts = name.split("+")
    if len(parts) != 2 or not all(parts):
        raise InvalidParameterError(f"a combined name is 'candidates+scorer', e.g. 'dacs+entropy'; got {name!r}")
    first, second = parts
    eta = params.pop("eta", 2.0)
    shared = {k: params.pop(k) for k in list(params) if k == "seed"}
    first_params = {k.split("__", 1)[1]: params.pop(k) for k in list(params) if k.startswith("first__")}
    second_params = {k.split("__", 1)[1]: params.pop(k) for k in list(params) if k.startswith("second__")}
    if params:
        raise InvalidParameterError(
            f"unknown parameter(s) {sorted(params)} for {name!r}; use eta=, seed=, first__<name>= or second__<name>="
        )
    for part, own in ((first, first_params), (second, second_params)):
        if "seed" in get_class(part)._param_names():
            own.setdefault("seed", shared.get("seed"))
    scorer = get(second, **second_params)
    if not isinstance(scorer, ScoreStrategy):
        raise InvalidParameterError(f"{second!r} cannot squeeze: it is not a score-based strategy (ScoreStrategy)")
    combo = ExpandSqueeze(get(first, **first_params), scorer, eta=eta)
    combo.name = name  # type: ignore[misc]
    combo.validate_params()
    return combo


register_composer(lambda name: "+" in name, _build)
