"""The one interface: ``Strategy.select(model, pools, budget)``.

Subclasses implement :meth:`Strategy.select` only.  The base class wraps every
subclass's ``select`` with the shared checks (budget type and value, an empty
pool, a budget at least the pool size, parameter validation), so user
strategies get them for free.  Score-ranking strategies subclass
:class:`ScoreStrategy` and implement :meth:`ScoreStrategy.score` instead.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import warnings
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np

from .._validation import as_integral_indices
from ..exceptions import CheckpointError, InvalidInputError, InvalidParameterError, SelectionError

if TYPE_CHECKING:
    from ..model import ALModel, ModelExtension
    from ..pools import Pools

__all__ = ["Strategy", "ScoreStrategy", "check_budget", "optional_int", "positive_int", "one_of", "a_bool", "predicted_in_task", "require_softmax"]


def check_budget(budget: Any) -> int:
    """``budget`` must be a positive int (bools, floats and strings are refused)."""
    if not isinstance(budget, numbers.Integral) or isinstance(budget, bool) or budget < 1:
        raise InvalidParameterError(f"budget must be a positive int, got {budget!r}")
    return int(budget)


# ---- parameter constraints (scikit-learn style: declared, checked where used)
def optional_int(name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, numbers.Integral) or isinstance(value, bool)):
        raise InvalidParameterError(f"{name} must be an int or None, got {value!r}")


def positive_int(name: str, value: Any) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise InvalidParameterError(f"{name} must be a positive int, got {value!r}")


def positive_real(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < float(value) < float("inf"):
        raise InvalidParameterError(f"{name} must be a finite number > 0, got {value!r}")


def nonnegative_real(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) < float("inf"):
        raise InvalidParameterError(f"{name} must be a finite number >= 0, got {value!r}")


def a_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise InvalidParameterError(f"{name} must be True or False, got {value!r}")


def predicted_in_task(model: "ALModel", pools: "Pools", indices: np.ndarray) -> np.ndarray:
    """Mask of ``indices`` whose argmax over the K+1 outputs is not the "not in task" class.

    Needs a model built with ``open_set=True`` (it serves ``"open_probs"``).
    """
    if "open_probs" not in model.provides():
        raise InvalidParameterError(
            "skip_predicted_ood=True needs the auxiliary 'not in task' class: build the model with "
            "ALModel(..., open_set=True) and a backbone with num_classes + 1 outputs"
        )
    p = model.outputs(pools, indices, "open_probs")["open_probs"]
    return (p.argmax(dim=1) != p.shape[1] - 1).cpu().numpy()


def require_softmax(model: "ALModel", who: str) -> None:
    """Refuse a head whose class scores do not sum to one (e.g. NCE-Net's prototypes), saying how to fix it."""
    if not model.probs_sum_to_one:
        head = model.head_extension
        raise InvalidInputError(
            f"{who!r} needs class probabilities that sum to one (a softmax head), but the attached head "
            f"{getattr(head, 'name', '?')!r} gives independent per-class scores (e.g. NCE-Net); use a softmax head, "
            "or 'bentropy' / 'ncenet' (rejection, confusion) with such a head"
        )


def one_of(*choices: str) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if value not in choices:
            raise InvalidParameterError(f"{name} must be one of {list(choices)}, got {value!r}")

    return check


def _wrap_select(fn: Callable[..., Any]) -> Callable[..., np.ndarray]:
    @functools.wraps(fn)
    def select(self: "Strategy", model: "ALModel", pools: "Pools", budget: int) -> np.ndarray:
        budget = check_budget(budget)
        self.validate_params()
        n_unlabeled = pools.n_unlabeled
        if n_unlabeled == 0:
            raise InvalidInputError("the unlabeled pool is empty: nothing left to select")
        if budget >= n_unlabeled:
            if budget > n_unlabeled:
                warnings.warn(
                    f"budget {budget} exceeds the {n_unlabeled} unlabeled samples; returning the whole pool",
                    stacklevel=2,
                )
            return pools.unlabeled.copy()
        out = fn(self, model, pools, budget)
        if hasattr(out, "groups") and hasattr(out, "indices"):  # a Query: samples plus clusters
            return out
        return as_integral_indices(np.asarray(out).reshape(-1), "a selection", error=SelectionError)  # floats never truncated

    select._checked = True  # type: ignore[attr-defined]
    return select


class Strategy(ABC):
    """An acquisition strategy.

    Implement :meth:`select`.  Declare in ``requires`` the model outputs used
    (``"probs"``, ``"embeddings"``, ``"stage0"``... or an extension's outputs),
    and return from :meth:`model_extensions` the heads/losses to plug into the
    model.  Constructors only store hyperparameters (keyword arguments); declare
    checks in ``_constraints`` and they run at ``get()`` and at every ``select``.

    Randomness comes only from ``seed``: :meth:`rng` derives a generator from
    (seed, cycle, interactions so far), so the same seed gives the same picks and
    a resumed run continues identically.
    """

    #: registry name (set by :func:`activelearn.strategies.register`)
    name: ClassVar[str] = ""
    #: model outputs the strategy reads
    requires: ClassVar[frozenset[str]] = frozenset()
    #: parameter name -> checker(name, value) raising InvalidParameterError
    _constraints: ClassVar[dict[str, Callable[[str, Any], None]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fn = cls.__dict__.get("select")
        if fn is not None and not getattr(fn, "_checked", False) and not getattr(fn, "__isabstractmethod__", False):
            cls.select = _wrap_select(fn)  # type: ignore[method-assign]

    @abstractmethod
    def select(self, model: "ALModel", pools: "Pools", budget: int) -> np.ndarray:
        """Return ``budget`` unique indices from ``pools.unlabeled``.

        Parameters
        ----------
        model : ALModel
            The trained model; ask it for outputs with
            ``model.outputs(pools, indices, names)``.
        pools : Pools
            The books; labels are readable for labeled samples only.
        budget : int
            How many samples to pick (checked by the base class to be a
            positive int smaller than the unlabeled pool).

        Returns
        -------
        numpy.ndarray of int64, pool indices; or an
        :class:`activelearn.oracle.Query` whose ``indices`` (one interaction
        each) and ``groups`` (clusters, one interaction each) together make
        ``budget`` interactions, for strategies that ask for cluster labels.
        """

    def model_extensions(self) -> list["ModelExtension"]:
        """Heads and losses this strategy adds to the model (default: none)."""
        return []

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """The strategy's fitted state, for checkpoints (default: none).

        A strategy that keeps something between ``select`` calls (a trained
        encoder, cluster assignments, a cache that would not be recomputed
        identically) returns it here as plain containers, numbers, strings and
        tensors (what ``torch.load(weights_only=True)`` reads), and restores it
        in :meth:`load_state_dict`; hyperparameters stay in the constructor.
        """
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (default: accepts only the empty state).

        Raises
        ------
        CheckpointError
            If ``state`` holds anything: the saved strategy kept a state this one cannot load.
        """
        if state:
            raise CheckpointError(
                f"{type(self).__name__} keeps no state but the checkpoint holds {sorted(state)}; "
                "build the strategy the checkpoint was written with"
            )

    # ------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters and their current values."""
        return {k: getattr(self, k) for k in self._param_names() if hasattr(self, k)}

    def validate_params(self) -> None:
        """Run the declared ``_constraints`` over the current parameters."""
        for cls in type(self).__mro__:
            for pname, check in getattr(cls, "_constraints", {}).items():
                if hasattr(self, pname):
                    check(pname, getattr(self, pname))

    def rng(self, pools: "Pools", *salt: int) -> np.random.Generator:
        """A generator for this call: from (seed, cycle, interactions, salt), or fresh when seed is None."""
        seed = getattr(self, "seed", None)
        if seed is None:
            return np.random.default_rng()
        return np.random.default_rng([int(seed), int(pools.cycle), int(pools.n_interactions), *map(int, salt)])

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


class ScoreStrategy(Strategy):
    """A strategy that ranks unlabeled samples by a score and keeps the top ``budget``.

    Implement :meth:`score` (higher = more informative).  ``subset`` scores only a
    seeded random subset of the unlabeled pool (LL4AL and NCE-Net use 10,000);
    ties go to the lowest index; NaN scores rank last.

    ``skip_predicted_ood=True`` is the fairness device of Kim, Kim & Hwang for
    open-set pools: with a model built with ``open_set=True``, candidates whose
    argmax over the K+1 outputs is the "not in task" class are skipped.  Should
    fewer than ``budget`` candidates remain, the skipped ones fill the rest in
    score order (so the selection keeps its exact size).
    """

    _constraints: ClassVar[dict[str, Callable[[str, Any], None]]] = {"subset": optional_int, "seed": optional_int, "skip_predicted_ood": a_bool}

    def __init__(self, *, subset: int | None = None, seed: int | None = None, skip_predicted_ood: bool = False) -> None:
        self.subset = subset
        self.seed = seed
        self.skip_predicted_ood = skip_predicted_ood

    @abstractmethod
    def score(self, model: "ALModel", pools: "Pools", indices: np.ndarray) -> np.ndarray:
        """One informativeness score per index (higher = pick first)."""

    def candidates(self, pools: "Pools", budget: int) -> np.ndarray:
        """The unlabeled samples to score: all, or a random subset of ``max(subset, budget)``."""
        pool = pools.unlabeled
        if self.subset is not None and self.subset < pool.size:
            size = max(int(self.subset), budget)
            if size < pool.size:
                pool = np.sort(self.rng(pools, 1).choice(pool, size=size, replace=False))
        return pool

    def select(self, model: "ALModel", pools: "Pools", budget: int) -> np.ndarray:
        cand = self.candidates(pools, budget)
        scores = np.asarray(self.score(model, pools, cand), dtype=np.float64)
        if scores.shape != cand.shape:
            raise InvalidInputError(f"{type(self).__name__}.score returned shape {scores.shape}, expected {cand.shape}")
        if getattr(self, "skip_predicted_ood", False):
            keep = predicted_in_task(model, pools, cand)
            first = top_k(cand[keep], scores[keep], budget)
            if first.size == budget:
                return first
            return np.concatenate([first, top_k(cand[~keep], scores[~keep], budget - first.size)])
        return top_k(cand, scores, budget)


def top_k(indices: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` indices of highest score; ties to the lowest index, NaN last."""
    s = np.where(np.isnan(scores), -np.inf, scores)
    order = np.lexsort((indices, -s))
    return indices[order[:k]]
