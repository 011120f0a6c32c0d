"""Peak memory of one ``cluster_annotation`` selection and of its parts, at small scale (issue 17).

Each (part, N) runs in a fresh subprocess on synthetic float32 features
``N x d`` (default d = 256, the RMNIST MLP's embedding width) drawn around
``k = round(N / 75)`` centres (clusters of 75 members on average, as the
strategy's ``cluster_size`` and the paper's 50-100).  The subprocess imports
everything and runs a tiny warm-up k-means first, then resets its peak RSS
(``/proc/self/clear_refs``, "5") and measures the part: ``added`` = VmHWM
after the part minus VmRSS before it (torch's CPU allocations bypass Python's
allocator, so ``tracemalloc`` does not see them; its peak is printed beside
for numpy's, which it does see).  Workers run with
``MALLOC_MMAP_THRESHOLD_=131072`` so that glibc maps every large block and
unmaps it when freed, as it does for the ``N x d`` arrays at N = 179,500
(its dynamic threshold stops at 32 MiB); otherwise freed heap pages already
counted in the baseline RSS hide allocations at small N.

Parts:

* ``isfinite``: ``torch.isfinite(x).all()`` on the whole matrix (the check
  :func:`activelearn.ops.kmeans` made before issue 17);
* ``var``: ``np.var(x, axis=0)``, what scikit-learn's ``KMeans`` computes for
  its tolerance (``tol != 0``) before centring the data;
* ``sk_nocopy`` / ``sk_copy``: ``sklearn.cluster.KMeans(copy_x=False / True).fit``
  as :func:`activelearn.ops.kmeans` calls it;
* ``kmeans`` / ``kmeans_copy``: :func:`activelearn.ops.kmeans` with
  ``copy=False`` / ``True`` (our validation + scikit-learn + labels to torch);
  ``kmeans_tol0``: ``copy=False, tol=0`` (scikit-learn skips its tolerance's
  ``np.var``);
* ``select``: one ``cluster_annotation`` selection (``scenario="cluster"``,
  ``rank="all"``, ``feature="inputs"``, budget ``k``) on a pool whose inputs
  are the features: the gathered unlabeled features plus everything the
  strategy does with them;
* ``select_purity``: the same with ``rank="purity"`` (``cluster_size=75``,
  the configuration of the 180,000-sample row measured before ``rank="all"``
  became the default), budget 500;
* ``select_tol0``: ``select`` with the strategy's ``tol=0``.

Memory does not depend on the number of Lloyd iterations, so ``--n-iter``
(default 3) keeps the runs short.  ``--chunk-size`` (default 16,384, the
library's) is k-means' block of rows; at these small N one block covers most
of the pool, so fit with a smaller one (e.g. 2,048) to separate the O(N)
slope from the chunk.  For each part, ``added = a * N + b`` is
fitted by least squares over the sizes and extrapolated to ``--at``
(default 179,500, the RMNIST unlabeled pool).

Example::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/cluster_memory.py --sizes 10000,20000,40000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from strategies import status_mib as _status_mib  # noqa: E402  (benchmarks/strategies.py: /proc/self/status fields in MiB)

PARTS = ("isfinite", "var", "sk_nocopy", "sk_copy", "kmeans", "kmeans_copy", "kmeans_tol0", "select", "select_purity", "select_tol0")


def features(n: int, d: int, seed: int = 0) -> np.ndarray:
    """``n x d`` float32 blobs around ``round(n / 75)`` centres (C-contiguous)."""
    rng = np.random.default_rng(seed)
    k = max(1, round(n / 75))
    centres = rng.standard_normal((k, d), dtype=np.float32) * 3
    x = rng.standard_normal((n, d), dtype=np.float32)
    x += centres[rng.integers(k, size=n)]
    return x


def _part(name: str, x: np.ndarray, k: int, n_iter: int, chunk: int) -> Callable[[], Any]:
    import torch
    from sklearn.cluster import KMeans

    import activelearn as al
    from activelearn.backbones import MLP
    from activelearn.ops import kmeans

    t = torch.from_numpy(x)
    if name == "isfinite":
        return lambda: bool(torch.isfinite(t).all())
    if name == "var":
        return lambda: np.var(x, axis=0)
    if name in ("sk_nocopy", "sk_copy"):
        return lambda: KMeans(n_clusters=k, n_init=1, max_iter=n_iter, random_state=0, tol=1e-6, copy_x=name == "sk_copy").fit(x)
    if name in ("kmeans", "kmeans_copy", "kmeans_tol0"):
        tol = 0.0 if name == "kmeans_tol0" else 1e-6
        return lambda: kmeans(t, k, n_iter=n_iter, seed=0, chunk_size=chunk, copy=name == "kmeans_copy", tol=tol)
    if name in ("select", "select_purity", "select_tol0"):
        pools = al.Pools(t, num_classes=2)
        model = al.ALModel(MLP(x.shape[1], 2, hidden=(4,)), num_classes=2, device="cpu", seed=0)
        rank, budget = ("purity", 500) if name == "select_purity" else ("all", k)
        strategy = al.strategies.get("cluster_annotation", scenario="cluster", rank=rank, cluster_size=75, feature="inputs",
                                     n_iter=n_iter, chunk_size=chunk, seed=0, tol=0.0 if name == "select_tol0" else 1e-6)
        return lambda: strategy.select(model, pools, budget)
    raise SystemExit(f"unknown part {name!r}; choose from {PARTS}")


def worker(part: str, n: int, d: int, n_iter: int, chunk: int) -> dict[str, Any]:
    from activelearn.ops import kmeans

    x = features(n, d)
    k = max(1, round(n / 75))
    kmeans(np.ascontiguousarray(x[:500]), 5, n_iter=2, seed=0)  # warm-up: imports, thread pools
    fn = _part(part, x, k, n_iter, chunk)
    with open("/proc/self/clear_refs", "w") as fh:  # VmHWM := VmRSS
        fh.write("5")
    rss0 = _status_mib("VmRSS")
    tracemalloc.start()
    t0 = time.process_time()
    fn()
    cpu = time.process_time() - t0
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"part": part, "n": n, "d": d, "k": k, "chunk_size": chunk, "added_mib": _status_mib("VmHWM") - rss0,
            "traced_peak_mib": traced / 2**20, "features_mib": x.nbytes / 2**20, "cpu_s": cpu}


def fit(rows: list[dict[str, Any]], at: int) -> dict[str, tuple[float, float, float]]:
    """Per part: (a MiB per 1,000 rows, b MiB, extrapolated MiB at ``at`` rows)."""
    out = {}
    for part in dict.fromkeys(r["part"] for r in rows):
        pts = [(r["n"], r["added_mib"]) for r in rows if r["part"] == part]
        if len(pts) < 2:
            continue
        a, b = np.polyfit([p[0] for p in pts], [p[1] for p in pts], 1)
        out[part] = (a * 1000, b, a * at + b)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,20000,40000")
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--n-iter", type=int, default=3)
    ap.add_argument("--chunk-size", type=int, default=16384, help="kmeans / strategy chunk_size (rows per finiteness block)")
    ap.add_argument("--at", type=int, default=179_500, help="extrapolate the fits to this many rows")
    ap.add_argument("--jsonl", default=None, help="append the measured rows here")
    ap.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_n", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker:
        print(json.dumps(worker(args._worker, args._n, args.d, args.n_iter, args.chunk_size)))
        return
    # large blocks straight from mmap and back on free, as every N x d array is at N = 179,500 (glibc's dynamic
    # threshold stops at 32 MiB): otherwise freed heap pages counted in the baseline RSS hide small-N allocations
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MALLOC_MMAP_THRESHOLD_": "131072"}
    rows = []
    for part in args.parts.split(","):
        for n in map(int, args.sizes.split(",")):
            cmd = [sys.executable, __file__, "--_worker", part, "--_n", str(n), "--d", str(args.d), "--n-iter", str(args.n_iter), "--chunk-size", str(args.chunk_size)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{part:12s} N={n:6d} k={row['k']:4d} features {row['features_mib']:6.1f} MiB  added {row['added_mib']:7.1f} MiB  "
                  f"tracemalloc peak {row['traced_peak_mib']:7.1f} MiB  cpu {row['cpu_s']:.1f} s", flush=True)
            if args.jsonl:
                with open(args.jsonl, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
    feat = 4 * args.d * args.at / 2**20
    print(f"\nfits added = a * N + b (features at N = {args.at:,}: {feat:.0f} MiB)")
    for part, (a, b, ext) in fit(rows, args.at).items():
        print(f"{part:12s} a = {a:6.3f} MiB / 1,000 rows  b = {b:6.1f} MiB  -> {ext:6.0f} MiB at N = {args.at:,} ({ext / feat:.2f} x features)")


if __name__ == "__main__":
    main()
