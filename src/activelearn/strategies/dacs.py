"""DACS: density-aware core-set (Kim & Shin, KDD 2022).

Pipeline over the unlabeled pool ``U`` (see :func:`dacs_select`):

1. density of every unlabeled sample on the normalised auxiliary vectors
   (Reformer-style LSH, :func:`activelearn.ops.lsh_density`, or the exact kNN
   density, :func:`activelearn.ops.knn_density`);
2. Jenks natural breaks split the densities into ``h`` groups (group 0 = sparsest);
3. group ``i`` gets ``n_i`` of the budget from ``r_i = softmax((1 - |C_i|/|U|) / tau)``;
4. inside each group, k-center greedy (cosine) from the labeled set.

The model side is :class:`activelearn.extensions.AuxiliaryHead`, returned by
:meth:`DACS.model_extensions` so that the strategy works with any backbone.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal, overload

import numpy as np
import torch

from .. import distributed as D
from .._validation import as_feature_tensor, resolve_device
from ..exceptions import InvalidInputError, InvalidParameterError
from ..extensions.auxiliary import AuxiliaryHead
from ..ops.density import knn_density, lsh_density
from ..ops.jenks import jenks_breaks, jenks_labels
from ..ops.kcenter import kcenter_greedy
from ..ops.kcenter_dist import kcenter_greedy_distributed
from .base import Strategy, check_budget, one_of, optional_int, positive_int, positive_real
from .registry import register

if TYPE_CHECKING:
    from ..model import ALModel, ModelExtension
    from ..pools import Pools

__all__ = ["DACS", "dacs_select", "group_budgets", "density_groups"]


def _even_positive_int(name: str, value: Any) -> None:
    positive_int(name, value)
    if value % 2:
        raise InvalidParameterError(f"{name} must be even (LSH uses n_buckets / 2 random directions), got {value!r}")


def _fraction(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= float(value) <= 1:
        raise InvalidParameterError(f"{name} must be a number in [0, 1], got {value!r}")


def _bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise InvalidParameterError(f"{name} must be True or False, got {value!r}")


def group_budgets(sizes: np.ndarray | list[int], budget: int, *, tau: float = 0.25) -> np.ndarray:
    """Per-group budgets that sum to exactly ``budget`` (DACS Eq. 9 plus rounding rules).

    ``r_i = softmax((1 - |C_i| / |U|) / tau)`` over the non-empty groups and
    ``n_i = floor(r_i * budget)``.  The paper leaves two cases open; here:

    * the remainder ``budget - sum(n_i)`` goes one by one to the groups with
      the largest fractional parts ``r_i * budget - n_i`` (ties: the sparser,
      i.e. lower-index, group first);
    * a group with fewer members than its share keeps all its members and
      passes the surplus on to the next sparsest group (index + 1); surplus
      left after the densest group goes back to the sparsest groups that still
      have room, in order.

    Parameters
    ----------
    sizes : sequence of int
        Group sizes ``|C_i|``, ordered from sparsest (0) to densest.
    budget : int
        Total number of picks, at most ``sum(sizes)``.
    tau : float, default 0.25
        Softmax temperature (the paper's value).

    Returns
    -------
    numpy.ndarray of int64
        ``n_i`` per group, ``0 <= n_i <= |C_i|``, summing to ``budget``.

    Examples
    --------
    >>> group_budgets([100, 100, 100, 100], 10).tolist()
    [3, 3, 2, 2]
    """
    budget = check_budget(budget)
    positive_real("tau", tau)
    sz = np.asarray(sizes, dtype=np.int64)
    if sz.ndim != 1 or sz.size == 0 or (sz < 0).any():
        raise InvalidInputError(f"sizes must be a non-empty 1-D array of counts >= 0, got {sizes!r}")
    total = int(sz.sum())
    if budget > total:
        raise InvalidParameterError(f"budget={budget} exceeds the {total} samples of all groups; pass budget <= {total}")
    nonempty = sz > 0
    logits = np.where(nonempty, (1.0 - sz / total) / float(tau), -np.inf)
    r = np.exp(logits - logits[nonempty].max())
    r /= r.sum()
    share = r * budget
    n = np.floor(share).astype(np.int64)
    rest = budget - int(n.sum())
    if rest:
        frac = np.where(nonempty, share - n, -1.0)
        order = np.lexsort((np.arange(sz.size), -frac))
        n[order[:rest]] += 1
    carry = 0
    for i in range(sz.size):
        n[i] += carry
        carry = max(0, int(n[i] - sz[i]))
        n[i] -= carry
    for i in range(sz.size):
        if not carry:
            break
        extra = min(carry, int(sz[i] - n[i]))
        n[i] += extra
        carry -= extra
    return n


def density_groups(density: np.ndarray, n_groups: int = 4) -> tuple[np.ndarray, list[float]]:
    """Jenks groups of densities: labels (0 = sparsest) and the breaks.

    With fewer distinct values than ``n_groups`` the number of groups is reduced
    to the number of distinct values (Jenks is undefined beyond that).
    """
    positive_int("n_groups", n_groups)
    d = np.asarray(density, dtype=np.float64)
    n_unique = int(np.unique(d).size)
    k = min(int(n_groups), n_unique)
    breaks = jenks_breaks(d, k)
    return jenks_labels(d, breaks), breaks


def _check_select_params(*, n_groups: Any, tau: Any, density: Any, n_buckets: Any, n_rounds: Any, max_chunk: Any,
                         knn_k: Any, cross_group: Any, distributed: Any, seed: Any) -> None:
    """The parameter checks of :func:`dacs_select` (each raises InvalidParameterError naming the parameter)."""
    positive_int("n_groups", n_groups)
    positive_real("tau", tau)
    one_of("lsh", "knn")("density", density)
    _even_positive_int("n_buckets", n_buckets)
    positive_int("n_rounds", n_rounds)
    optional_int("max_chunk", max_chunk)
    if max_chunk is not None:
        positive_int("max_chunk", max_chunk)
    positive_int("knn_k", knn_k)
    _bool("cross_group", cross_group)
    _bool("distributed", distributed)
    optional_int("seed", seed)


def _vectors(z_unlabeled: Any, z_labeled: Any, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Both sets of vectors as unit-norm float32 tensors on ``dev`` (an empty labeled set gets ``d`` columns)."""
    zu = as_feature_tensor(z_unlabeled, "z_unlabeled", device=dev, dtype=torch.float32)
    zl = as_feature_tensor(z_labeled, "z_labeled", device=dev, dtype=torch.float32, allow_empty=True)
    if zl.numel() == 0:
        zl = zu.new_zeros((0, zu.shape[1]))
    if zl.shape[1] != zu.shape[1]:
        raise InvalidInputError(f"z_labeled has {zl.shape[1]} columns but z_unlabeled has {zu.shape[1]}; pass vectors of the same space")
    return torch.nn.functional.normalize(zu, dim=1), torch.nn.functional.normalize(zl, dim=1)


def _group_kcenter(zu: torch.Tensor, members: np.ndarray, centers: torch.Tensor, budget: int, *, sharded: bool,
                   chunk_size: int, device: torch.device, seed: int) -> np.ndarray:
    """Cosine k-center over one density group's ``members`` (rows of ``zu``), starting from ``centers``; returns the picked members."""
    n_rows = members.size + centers.shape[0]
    lab = np.arange(members.size, n_rows, dtype=np.int64)
    # the group's rows are its members then the centers; sharded, each rank builds only its slice
    a, b = D.shard_range(n_rows) if sharded else (0, n_rows)
    mine = torch.as_tensor(members[a : min(b, members.size)], device=device)
    feats = torch.cat([zu[mine], centers[max(a, members.size) - members.size : max(b, members.size) - members.size]])
    select = kcenter_greedy_distributed if sharded else kcenter_greedy
    rows = select(
        feats, budget, labeled=lab if lab.size else None, metric="cosine",
        chunk_size=chunk_size, device=device, seed=seed,
    )
    return members[rows]


@overload
def dacs_select(z_unlabeled: Any, z_labeled: Any, budget: int, *, n_groups: int = ..., tau: float = ..., density: str = ..., n_buckets: int = ..., max_chunk: int | None = ..., n_rounds: int = ..., knn_k: int = ..., cross_group: bool = ..., seed: int | None = ..., chunk_size: int = ..., device: str | torch.device | None = ..., return_info: Literal[False] = ..., distributed: bool = ...) -> np.ndarray: ...


@overload
def dacs_select(z_unlabeled: Any, z_labeled: Any, budget: int, *, n_groups: int = ..., tau: float = ..., density: str = ..., n_buckets: int = ..., max_chunk: int | None = ..., n_rounds: int = ..., knn_k: int = ..., cross_group: bool = ..., seed: int | None = ..., chunk_size: int = ..., device: str | torch.device | None = ..., return_info: Literal[True], distributed: bool = ...) -> tuple[np.ndarray, dict[str, Any]]: ...


def dacs_select(
    z_unlabeled: Any,
    z_labeled: Any,
    budget: int,
    *,
    n_groups: int = 4,
    tau: float = 0.25,
    density: str = "lsh",
    n_buckets: int = 100,
    max_chunk: int | None = 2000,
    n_rounds: int = 1,
    knn_k: int = 20,
    cross_group: bool = False,
    seed: int | None = None,
    chunk_size: int = 65536,
    device: str | torch.device | None = None,
    return_info: bool = False,
    distributed: bool = False,
) -> np.ndarray | tuple[np.ndarray, dict[str, Any]]:
    """DACS selection on raw vectors: density, Jenks groups, softmax budgets, per-group k-center.

    Parameters
    ----------
    z_unlabeled : array-like or torch.Tensor, shape (N, d)
        Auxiliary vectors of the unlabeled pool (normalised here; DACS uses the
        unit 16-d outputs of :class:`~activelearn.extensions.AuxiliaryHead`).
    z_labeled : array-like or torch.Tensor, shape (L, d) (L may be 0)
        Auxiliary vectors of the labeled set (the initial k-center centers).
    budget : int
        Number of samples to pick, ``1 <= budget <= N``.
    n_groups : int, default 4
        Jenks groups ``h`` (fewer when the densities have fewer distinct values).
    tau : float, default 0.25
        Temperature of the group-budget softmax.
    density : {"lsh", "knn"}, default "lsh"
        LSH estimate (paper) or exact kNN density (O(N^2 d) time; small pools).
    n_buckets, n_rounds : int
        LSH buckets (even, default 100) and hash rounds averaged (default 1).
    max_chunk : int or None, default 2000
        Upper bound on the LSH chunk size ``m = ceil(N / buckets)``: the
        number of buckets used is ``max(n_buckets, 2 * ceil(N / (2 * max_chunk)))``.
        The paper fixes 100 buckets, which makes LSH cost O(N^2 d / 100): fine
        at its pool sizes (50,000 and 180,000 samples, where this bound does
        not change anything, as ``m <= 2000`` up to N = 200,000) but minutes
        at a million samples.  Beyond 200,000 samples the bound keeps each
        sample's neighbourhood at 2,000-4,000 rows and the cost linear in N.
        Densities are sums over neighbours, so more buckets scale them down
        uniformly; the Jenks grouping is unaffected by that.  ``None`` keeps
        exactly ``n_buckets`` (the paper's rule at any N).
    knn_k : int, default 20
        Neighbours of the kNN density.
    cross_group : bool, default False
        False (paper, Alg. 1): a group's k-center measures distances to the
        labeled set plus that group's own picks.  True: also to the picks of
        the groups processed before it (sparsest first).
    seed : int, optional
        Seeds the LSH rotations and the first k-center pick when nothing is labeled.
    chunk_size : int
        Rows per distance block in k-center.
    device : str or torch.device, optional
        Where to compute (default: the tensor's device, else CUDA when available).
    return_info : bool
        Also return a dict with ``density``, ``labels``, ``breaks``, ``sizes``, ``budgets``.
    distributed : bool, default False
        Run inside a ``torch.distributed`` process group (every rank calls with
        the same full ``z_unlabeled``, ``z_labeled`` and arguments; no-op
        without a group).  The auxiliary vectors are small (``d = 16``, i.e.
        64 bytes per sample in float32) so every rank holds all of them: the
        LSH density and the Jenks grouping run on rank 0 and are broadcast
        (densities, labels and breaks: about 16 bytes per sample), which
        guarantees identical groups on every rank; each group's k-center is
        then sharded, every rank keeping only its contiguous slice of the
        group's rows and their min-distances
        (:func:`activelearn.ops.kcenter_greedy_distributed`).  The picks equal
        the single-process picks for the same vectors and seed.

    Returns
    -------
    numpy.ndarray of int64
        ``budget`` distinct row indices into ``z_unlabeled`` (grouped, sparsest group first).
    """
    budget = check_budget(budget)
    _check_select_params(n_groups=n_groups, tau=tau, density=density, n_buckets=n_buckets, n_rounds=n_rounds,
                         max_chunk=max_chunk, knn_k=knn_k, cross_group=cross_group, distributed=distributed, seed=seed)
    if device is None and isinstance(z_unlabeled, torch.Tensor):
        device = z_unlabeled.device
    dev = resolve_device(device)
    zu, zl = _vectors(z_unlabeled, z_labeled, dev)
    n = int(zu.shape[0])
    if budget > n:
        raise InvalidParameterError(f"budget={budget} exceeds the {n} unlabeled rows; pass budget <= {n}")
    ss = np.random.SeedSequence(seed) if seed is not None else np.random.SeedSequence()
    lsh_seed, kc_seed = (int(s) for s in ss.generate_state(2) % (2**31 - 1))
    buckets = int(n_buckets)
    if max_chunk is not None:
        buckets = max(buckets, 2 * math.ceil(n / (2 * int(max_chunk))))
    sharded = bool(distributed) and D.is_distributed()

    def grouping() -> tuple[np.ndarray, np.ndarray, list[float]]:
        if density == "lsh":
            dens = lsh_density(zu, n_buckets=buckets, n_rounds=n_rounds, seed=lsh_seed, device=dev)
        else:
            dens = knn_density(zu, k=knn_k, metric="cosine", device=dev)
        d_np = dens.double().cpu().numpy()
        return (d_np, *density_groups(d_np, n_groups))

    if sharded:  # rank 0 groups, every rank receives the same groups
        dens_np, labels, breaks = D.broadcast_object(grouping() if D.is_main_process() else None)
    else:
        dens_np, labels, breaks = grouping()
    k = len(breaks) - 1
    sizes = np.bincount(labels, minlength=k)
    budgets = group_budgets(sizes, budget, tau=tau)
    picks: list[np.ndarray] = []
    previous = zl
    for g in range(k):
        if budgets[g] == 0:
            continue
        members = np.flatnonzero(labels == g)
        chosen = _group_kcenter(zu, members, previous if cross_group else zl, int(budgets[g]),
                                sharded=sharded, chunk_size=chunk_size, device=dev, seed=kc_seed + g)
        picks.append(chosen)
        if cross_group:
            previous = torch.cat([previous, zu[torch.as_tensor(chosen, device=dev)]])
    out = np.concatenate(picks).astype(np.int64)
    if return_info:
        info = {"density": dens_np, "labels": labels, "breaks": breaks, "sizes": sizes, "budgets": budgets, "n_buckets": buckets}
        return out, info
    return out


@register("dacs")
class DACS(Strategy):
    """Density-aware core-set (Kim & Shin, KDD 2022).

    Attaches an :class:`~activelearn.extensions.AuxiliaryHead` to the model
    and selects with :func:`dacs_select` on its normalised vectors of the
    unlabeled pool (labeled vectors are the k-center's starting centers).

    Parameters
    ----------
    n_groups : int, default 4
        Jenks density groups ``h``.
    tau : float, default 0.25
        Temperature of the per-group budget softmax.
    density : {"lsh", "knn"}, default "lsh"
        Density estimate: the paper's LSH, or exact kNN (small pools only).
    n_buckets : int, default 100
        LSH buckets (even).  Pools smaller than this are fine: chunks then
        hold one sample (see :func:`activelearn.ops.lsh_density`).
    max_chunk : int or None, default 2000
        Caps the LSH chunk size on pools above 200,000 samples (more buckets,
        linear time); no effect at the paper's pool sizes; ``None`` = paper's
        rule at any size.  See :func:`dacs_select`.
    n_rounds : int, default 1
        LSH hash rounds averaged (the paper uses one).
    knn_k : int, default 20
        Neighbours for ``density="knn"``.
    cross_group : bool, default False
        Also count other groups' picks as centers in a group's k-center.
    aux_dim, aux_weight, aux_scale, detach_after :
        The auxiliary head's ``dim`` (16), loss weight ``lambda`` (1.0, must
        be > 0: the paper always trains the head), cosine scale (10.0) and
        detach fraction (0.6); see :class:`~activelearn.extensions.AuxiliaryHead`.
        If the model already carries an auxiliary head (e.g. attached for every
        strategy), that one is used.  On a regression task the head is a
        regression head trained with the task's loss (MSE), as the paper does on
        Davis; the cosine scale is then unused.
    chunk_size : int
        Rows per k-center distance block.
    seed : int, optional
        Seeds LSH and k-center (with the cycle, via :meth:`Strategy.rng`).
    """

    requires = frozenset({"aux_embedding"})
    _constraints: ClassVar[dict[str, Callable[[str, Any], None]]] = {
        "n_groups": positive_int,
        "tau": positive_real,
        "density": one_of("lsh", "knn"),
        "n_buckets": _even_positive_int,
        "n_rounds": positive_int,
        "max_chunk": lambda name, v: None if v is None else positive_int(name, v),
        "knn_k": positive_int,
        "cross_group": _bool,
        "aux_dim": positive_int,
        "aux_weight": positive_real,  # 0 would leave the projection DACS measures on untrained
        "aux_scale": positive_real,
        "detach_after": _fraction,
        "chunk_size": positive_int,
        "seed": optional_int,
    }

    def __init__(
        self,
        *,
        n_groups: int = 4,
        tau: float = 0.25,
        density: str = "lsh",
        n_buckets: int = 100,
        max_chunk: int | None = 2000,
        n_rounds: int = 1,
        knn_k: int = 20,
        cross_group: bool = False,
        aux_dim: int = 16,
        aux_weight: float = 1.0,
        aux_scale: float = 10.0,
        detach_after: float = 0.6,
        chunk_size: int = 65536,
        seed: int | None = None,
    ) -> None:
        self.n_groups = n_groups
        self.tau = tau
        self.density = density
        self.n_buckets = n_buckets
        self.max_chunk = max_chunk
        self.n_rounds = n_rounds
        self.knn_k = knn_k
        self.cross_group = cross_group
        self.aux_dim = aux_dim
        self.aux_weight = aux_weight
        self.aux_scale = aux_scale
        self.detach_after = detach_after
        self.chunk_size = chunk_size
        self.seed = seed

    def model_extensions(self) -> list["ModelExtension"]:
        return [
            AuxiliaryHead(dim=self.aux_dim, weight=self.aux_weight, scale=self.aux_scale, detach_after=self.detach_after)
        ]

    def select(self, model: "ALModel", pools: "Pools", budget: int) -> np.ndarray:
        # In a distributed run model.outputs shards the pass and gathers the
        # (16-d) vectors on every rank; dacs_select then shards the k-center.
        unlabeled, labeled = pools.unlabeled, pools.labeled
        idx = np.concatenate([unlabeled, labeled])
        z = model.outputs(pools, idx, "aux_embedding")["aux_embedding"]
        seed = int(self.rng(pools).integers(2**31 - 1))
        rows = dacs_select(
            z[: unlabeled.size], z[unlabeled.size :], budget,
            n_groups=self.n_groups, tau=self.tau, density=self.density, n_buckets=self.n_buckets, max_chunk=self.max_chunk,
            n_rounds=self.n_rounds, knn_k=self.knn_k, cross_group=self.cross_group, seed=seed,
            chunk_size=self.chunk_size, device=z.device, distributed=D.is_distributed(),
        )
        return unlabeled[rows]
