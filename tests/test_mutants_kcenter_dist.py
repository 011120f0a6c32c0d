"""Sharded k-center greedy run in one process: every rank is a thread, collectives are a barrier.

:func:`kcenter_greedy_distributed` normally runs in ``torch.distributed``
worker processes (tests/test_distributed.py), where mutmut's statistics do not
see it.  Here ``torch.distributed`` is replaced, for the module under test
only, by :class:`ThreadWorld`: ``world`` threads of this process, whose
``all_gather`` / ``broadcast`` / ``all_reduce`` exchange tensors through a
``threading.Barrier`` (and refuse mismatched shapes or dtypes, as a real
backend would fail on them).  The picks of every rank are checked against a
brute-force float64 greedy and against the single-process
:func:`kcenter_greedy`, over uneven and empty shards, chunk sizes that split
rows and shards unevenly, exact ties across shards, both metrics, with and
without labeled rows; bad input must raise the library's errors on every rank.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np
import pytest
import torch

from activelearn import distributed as D
from activelearn.exceptions import InvalidInputError, InvalidParameterError
from activelearn.ops import kcenter_dist
from activelearn.ops.kcenter import kcenter_greedy
from activelearn.ops.kcenter_dist import kcenter_greedy_distributed


pytestmark = pytest.mark.usefixtures("single_thread")


# --------------------------------------------------------------------------- #
# a world of threads
# --------------------------------------------------------------------------- #
class ThreadWorld:
    """Stand-in for ``torch.distributed``: ranks are threads, collectives meet at a barrier."""

    def __init__(self, world: int, timeout: float = 60.0) -> None:
        self.world = world
        self._barrier = threading.Barrier(world, timeout=timeout)
        self._slots: list[torch.Tensor | None] = [None] * world
        self._local = threading.local()

    def rank(self) -> int:
        return int(self._local.rank)

    def _exchange(self, t: torch.Tensor) -> list[torch.Tensor]:
        self._slots[self.rank()] = t.detach().clone()
        self._barrier.wait()
        got = [s for s in self._slots if s is not None]
        self._barrier.wait()
        assert len(got) == self.world
        for g in got:  # a real backend fails on mismatched collectives
            assert g.shape == t.shape and g.dtype == t.dtype, (g.shape, g.dtype, t.shape, t.dtype)
        return got

    def all_gather(self, parts: list[torch.Tensor], t: torch.Tensor) -> None:
        assert len(parts) == self.world
        for p, g in zip(parts, self._exchange(t)):
            assert p.shape == g.shape and p.dtype == g.dtype
            p.copy_(g)

    def broadcast(self, t: torch.Tensor, src: int) -> None:
        assert 0 <= src < self.world
        t.copy_(self._exchange(t)[src])

    def all_reduce(self, t: torch.Tensor) -> None:
        got = self._exchange(t)
        total = got[0].clone()
        for g in got[1:]:
            total += g
        t.copy_(total)

    def run(self, fn: Callable[[int], Any]) -> list[Any]:
        """``fn(rank)`` on every rank; returns each rank's result or the exception it raised."""
        out: list[Any] = [None] * self.world

        def body(r: int) -> None:
            self._local.rank = r
            try:
                out[r] = fn(r)
            except Exception as exc:  # noqa: BLE001 - handed to the test
                out[r] = exc

        threads = [threading.Thread(target=body, args=(r,)) for r in range(self.world)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            threads[0].join(0.02)
            alive = sum(t.is_alive() for t in threads)
            # ranks that returned never reach the barrier again: the others would wait forever
            if 0 < alive < self.world and self._barrier.n_waiting == alive:
                self._barrier.abort()
            for t in threads:
                t.join(0.02)
        return out


@pytest.fixture
def make_world(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], ThreadWorld]:
    def make(world: int) -> ThreadWorld:
        w = ThreadWorld(world)
        monkeypatch.setattr(kcenter_dist, "dist", w)
        monkeypatch.setattr(D, "is_distributed", lambda: True)
        monkeypatch.setattr(D, "world_size", lambda: world)
        monkeypatch.setattr(D, "rank", w.rank)
        monkeypatch.setattr(D, "comm_device", lambda: torch.device("cpu"))
        return w

    return make


def sharded(world: ThreadWorld, x: Any, sizes: list[int], budget: int, **kw: Any) -> list[Any]:
    """Every rank's answer when rank ``r`` holds rows ``[sum(sizes[:r]), ... + sizes[r])`` of ``x``."""
    ends = np.cumsum(sizes)
    return world.run(lambda r: kcenter_greedy_distributed(x[ends[r] - sizes[r] : ends[r]], budget, **kw))


# --------------------------------------------------------------------------- #
# reference
# --------------------------------------------------------------------------- #
def brute_force(X: np.ndarray, budget: int, labeled: Any = None, metric: str = "euclidean", seed: int | None = None) -> list[int]:
    """float64 k-center greedy: min-distance update, argmax with ties to the lowest index."""
    X = np.asarray(X, dtype=np.float64)
    if metric == "cosine":
        nrm = np.linalg.norm(X, axis=1, keepdims=True)
        X = np.where(nrm > 0, X / np.where(nrm > 0, nrm, 1.0), 0.0)

    def dist(c: int) -> np.ndarray:
        if metric == "cosine":
            return np.maximum(1.0 - X @ X[c], 0.0)
        return np.sqrt(((X - X[c]) ** 2).sum(axis=1))

    n = X.shape[0]
    mind = np.full(n, np.inf)
    picks: list[int] = []
    lab = [] if labeled is None else list(labeled)
    for c in lab:
        mind = np.minimum(mind, dist(c))
    if not lab:
        picks.append(int(np.random.default_rng(seed).integers(n)))
        mind = np.minimum(mind, dist(picks[0]))
    mind[lab + picks] = -np.inf
    while len(picks) < budget:
        p = int(np.argmax(mind))
        picks.append(p)
        mind = np.minimum(mind, dist(p))
        mind[p] = -np.inf
    return picks


def grid(n: int, d: int, seed: int, dtype: Any = np.float64) -> np.ndarray:
    """Small integer coordinates: every squared distance is exact, so equal distances are real ties."""
    return np.random.default_rng(seed).integers(-3, 4, size=(n, d)).astype(dtype)


def normal(n: int, d: int, seed: int, dtype: Any = np.float64) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(dtype)


# (data, shard sizes, budget, options); shard sizes are uneven, some empty, some cut by every chunk
CASES: list[tuple[str, Callable[[], np.ndarray], list[int], int, dict[str, Any]]] = [
    ("grid-ties-labeled", lambda: grid(61, 3, 1), [20, 0, 7, 34], 30, {"labeled": [60, 0, 19, 20, 27, 33], "chunk_size": 7}),
    ("grid-ties-seeded", lambda: grid(50, 2, 2), [1, 24, 25], 40, {"seed": 4, "chunk_size": 6}),
    ("grid-float32-mask", lambda: grid(45, 4, 3, np.float32), [9, 9, 9, 9, 9], 25, {"labeled": np.arange(45) % 11 == 5, "chunk_size": 4}),
    ("grid-first-empty", lambda: grid(37, 3, 6), [0, 36, 1], 20, {"labeled": [36], "chunk_size": 5}),
    ("normal-cosine-labeled", lambda: normal(53, 5, 4), [13, 0, 22, 18], 25, {"labeled": [3, 13, 40, 52], "metric": "cosine", "chunk_size": 7}),
    ("normal-cosine-seeded", lambda: normal(40, 6, 5), [17, 23], 30, {"metric": "cosine", "seed": 7, "chunk_size": 9}),
    ("normal-euclidean-big-chunk", lambda: normal(47, 4, 8), [30, 17], 20, {"labeled": [5, 46], "chunk_size": 100}),
    ("zeros-and-dupes-cosine", lambda: np.concatenate([np.zeros((4, 3)), grid(30, 3, 9)]), [11, 12, 11], 15, {"labeled": [33], "metric": "cosine", "chunk_size": 8}),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_sharded_picks_equal_brute_force_and_one_process(make_world, case) -> None:
    _, data, sizes, budget, kw = case
    x = data()
    assert sum(sizes) == len(x)
    got = sharded(make_world(len(sizes)), x, sizes, budget, **kw)
    lab = kw.get("labeled")
    lab_idx = None if lab is None else np.flatnonzero(lab).tolist() if np.asarray(lab).dtype == bool else list(lab)
    ref = brute_force(x, budget, labeled=lab_idx, metric=kw.get("metric", "euclidean"), seed=kw.get("seed"))
    one = kcenter_greedy(x, budget, method="plain", **kw)
    np.testing.assert_array_equal(one, ref)
    for r, picks in enumerate(got):
        assert not isinstance(picks, BaseException), (r, picks)
        assert isinstance(picks, np.ndarray) and picks.dtype == np.int64
        np.testing.assert_array_equal(picks, ref, err_msg=f"rank {r}")


def test_sharded_float32_bit_equal_to_one_process(make_world) -> None:
    """Random float32 rows (no exact arithmetic): every rank's picks are the single-process ones."""
    x = normal(150, 12, 11, np.float32)
    sizes = [40, 3, 0, 66, 41]
    for kw in ({"labeled": [0, 42, 43, 149], "chunk_size": 16}, {"seed": 2, "chunk_size": 7, "metric": "cosine"},
               {"labeled": list(range(1, 150, 10)), "chunk_size": 13, "metric": "cosine"}):
        one = kcenter_greedy(x, 60, method="plain", **kw)
        for picks in sharded(make_world(len(sizes)), x, sizes, 60, **kw):
            np.testing.assert_array_equal(picks, one)


def test_sharded_budget_one_and_all_candidates(make_world) -> None:
    x = grid(23, 2, 12)
    for picks in sharded(make_world(3), x, [10, 0, 13], 1, seed=9):
        assert picks.tolist() == [int(np.random.default_rng(9).integers(23))]
    for picks in sharded(make_world(3), x, [10, 0, 13], 1, labeled=[4, 20]):
        assert picks.tolist() == brute_force(x, 1, labeled=[4, 20])
    for picks in sharded(make_world(2), x, [5, 18], 21, labeled=[4, 20], chunk_size=3):
        assert picks.tolist() == brute_force(x, 21, labeled=[4, 20])
        assert sorted(picks.tolist()) == [i for i in range(23) if i not in (4, 20)]


def test_empty_shard_given_as_list_or_other_width(make_world) -> None:
    """An empty shard has no width of its own: ``[]`` or a ``0 x 5`` array on a rank of 3-column rows."""
    x = grid(30, 3, 13)
    ref = brute_force(x, 12, labeled=[2, 29])
    w = make_world(3)
    shards = [x[:14], [], x[14:]]
    for picks in w.run(lambda r: kcenter_greedy_distributed(shards[r], 12, labeled=[2, 29], chunk_size=4)):
        assert picks.tolist() == ref
    w = make_world(3)
    shards = [x[:14], np.zeros((0, 5)), x[14:]]
    for picks in w.run(lambda r: kcenter_greedy_distributed(shards[r], 12, labeled=[2, 29], chunk_size=4)):
        assert picks.tolist() == ref
    w = make_world(3)  # an empty float32 shard among float64 ones is not a dtype clash
    shards64 = [x[:14], np.zeros((0, 3), np.float32), x[14:]]
    for picks in w.run(lambda r: kcenter_greedy_distributed(shards64[r], 12, labeled=[2, 29], chunk_size=4)):
        assert picks.tolist() == ref


class ArrayView:
    """An array-like with ``shape`` and ``__array__`` but no ``len()`` (like some lazily loaded arrays)."""

    def __init__(self, a: np.ndarray) -> None:
        self._a = a
        self.shape = a.shape

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._a if dtype is None else self._a.astype(dtype)


def test_shards_as_list_array_like_and_tensor(make_world) -> None:
    """A shard may be a nested list (no ``shape``: its width comes from the converted rows), an
    array-like without ``len()``, or a tensor."""
    x = grid(31, 3, 19)
    ref = brute_force(x, 14, labeled=[0, 30])
    shards = [x[:9].tolist(), ArrayView(x[9:20]), torch.from_numpy(x[20:])]
    for picks in make_world(3).run(lambda r: kcenter_greedy_distributed(shards[r], 14, labeled=[0, 30], chunk_size=4)):
        assert not isinstance(picks, BaseException), picks
        assert picks.tolist() == ref


def test_sharded_float64_kept_on_empty_rank(make_world) -> None:
    """float64 shards are computed in float64 on every rank, an empty one included (else picks differ)."""
    # three rows at distances from the labeled row that differ only below float32 resolution
    x = np.array([[0.0, 0.0], [1.0, 0.0], [1.0 + 1e-12, 0.0], [0.0, 1.0 + 2e-12]])
    ref = brute_force(x, 3, labeled=[0])
    assert ref == [3, 2, 1]
    for picks in sharded(make_world(3), x, [2, 0, 2], 3, labeled=[0], chunk_size=2):
        assert picks.tolist() == ref


def test_single_row_shards(make_world) -> None:
    x = grid(3, 2, 20)
    x[2] = [5.0, 5.0]
    for picks in sharded(make_world(3), x, [1, 1, 1], 3, seed=1):
        assert picks.tolist() == brute_force(x, 3, seed=1)


def test_broadcast_center_keeps_float64(make_world) -> None:
    """The broadcast center row keeps float64: rounded to float32, 1 + 1e-12 becomes 1 and rows 0 and 2 tie."""
    x = np.array([[2.0], [1.0 + 1e-12], [0.0]])
    seed = next(s for s in range(100) if np.random.default_rng(s).integers(3) == 1)  # first center: row 1
    ref = brute_force(x, 2, seed=seed)
    assert ref == [1, 2]
    for sizes in ([1, 2], [2, 0, 1], [3]):
        for picks in sharded(make_world(len(sizes)), x, sizes, 2, seed=seed):
            assert picks.tolist() == ref, sizes


# --------------------------------------------------------------------------- #
# bad input: every rank raises (nobody is left waiting)
# --------------------------------------------------------------------------- #
def test_refused_shard_raises_on_every_rank(make_world) -> None:
    x = np.ones((9, 2))
    x[5, 1] = np.nan
    got = sharded(make_world(3), x, [3, 3, 3], 2)
    assert isinstance(got[1], InvalidInputError) and "NaN" in str(got[1])
    for r in (0, 2):
        assert isinstance(got[r], InvalidInputError), got[r]
        assert str(got[r]).startswith("the features of rank(s) [1] were refused"), got[r]


def test_mismatched_shards_raise_on_every_rank(make_world) -> None:
    w = make_world(2)
    shards = [np.ones((3, 2)), np.ones((4, 3))]
    for e in w.run(lambda r: kcenter_greedy_distributed(shards[r], 2)):
        assert isinstance(e, InvalidInputError) and str(e).startswith("ranks hold features of different widths [2, 3]"), e
    w = make_world(2)
    mixed = [np.ones((3, 2)), np.ones((4, 2), np.float32)]
    for e in w.run(lambda r: kcenter_greedy_distributed(mixed[r], 2)):
        assert isinstance(e, InvalidInputError) and str(e).startswith("some ranks hold float64 features and others not"), e
    w = make_world(3)
    empty = [np.zeros((0, 2)), [], np.zeros((0, 4))]
    for e in w.run(lambda r: kcenter_greedy_distributed(empty[r], 1)):
        assert isinstance(e, InvalidInputError) and str(e).startswith("every rank passed an empty shard"), e
    w = make_world(2)  # a rank with a single row takes part in the checks like any other
    one_row = [np.ones((1, 3)), np.ones((4, 2))]
    for e in w.run(lambda r: kcenter_greedy_distributed(one_row[r], 2)):
        assert isinstance(e, InvalidInputError) and str(e).startswith("ranks hold features of different widths [2, 3]"), e
    w = make_world(2)
    one_row32 = [np.ones((1, 2), np.float32), np.ones((4, 2))]
    for e in w.run(lambda r: kcenter_greedy_distributed(one_row32[r], 2)):
        assert isinstance(e, InvalidInputError) and str(e).startswith("some ranks hold float64 features and others not"), e


def test_sharded_budget_and_labeled_checked_against_global_pool(make_world) -> None:
    x = grid(10, 2, 15)
    for e in sharded(make_world(2), x, [4, 6], 9, labeled=[0, 9]):
        assert isinstance(e, InvalidParameterError), e
        assert str(e).startswith("budget=9 exceeds the 8 non-labeled rows available (N=10, 2 labeled)")
    for e in sharded(make_world(2), x, [4, 6], 2, labeled=[10]):  # index 10 is outside the 10 global rows
        assert isinstance(e, InvalidInputError) and str(e).startswith("labeled must lie in [0, 10)"), e
    # an index beyond rank 0's 4 rows but inside the global pool is fine
    for picks in sharded(make_world(2), x, [4, 6], 3, labeled=[7]):
        assert picks.tolist() == brute_force(x, 3, labeled=[7])
    for picks in sharded(make_world(2), x, [4, 6], 3, labeled=np.arange(10) == 7):
        assert picks.tolist() == brute_force(x, 3, labeled=[7])


def test_sharded_bad_device_raises(make_world) -> None:
    for e in sharded(make_world(2), grid(6, 2, 16), [3, 3], 2, device="tpu"):
        assert isinstance(e, InvalidParameterError) and str(e).startswith("device must be"), e


@pytest.mark.parametrize("distributed", [False, True])
def test_bad_options_named_in_the_error(make_world, distributed: bool) -> None:
    x = grid(6, 2, 17)

    def call(**kw: Any) -> Exception:
        if distributed:
            (e0, e1) = sharded(make_world(2), x, [3, 3], **kw)
            assert type(e0) is type(e1) and str(e0) == str(e1)
            return e0
        with pytest.raises(InvalidParameterError) as info:
            kcenter_greedy_distributed(x, **kw)
        return info.value

    for kw, msg in (({"budget": 0}, "budget must be a positive int"), ({"budget": 2, "metric": "manhattan"}, "metric must be one of"),
                    ({"budget": 2, "chunk_size": 0}, "chunk_size must be a positive int"), ({"budget": 2, "device": "tpu"}, "device must be")):
        e = call(**kw)
        assert isinstance(e, InvalidParameterError) and str(e).startswith(msg), (kw, e)


def test_single_process_fallback_passes_every_option() -> None:
    """Without a process group: ``kcenter_greedy(..., method="plain")`` with the caller's options."""
    x = normal(70, 4, 18, np.float32)
    for kw in ({"labeled": [3, 69], "metric": "cosine", "chunk_size": 7}, {"seed": 5, "chunk_size": 9}):
        got = kcenter_greedy_distributed(x, 20, device="cpu", **kw)
        np.testing.assert_array_equal(got, kcenter_greedy(x, 20, method="plain", **kw))
