"""Sharded k-center greedy under torchrun: time, peak memory per rank, same picks as one process.

Every rank writes (rank 0) or opens the same seeded clustered features as a
``.npy`` memmap, takes its contiguous shard of the rows
(:func:`activelearn.distributed.shard_range`) and runs
:func:`activelearn.ops.kcenter_greedy_distributed`.  With one process the
same script runs the single-process plain greedy.  Rank 0 prints one JSON line
with the picks' digest, the seconds of the selection and every rank's peak
resident memory (``VmHWM``, which includes the interpreter and torch).

Example (the numbers in ``docs/distributed.md``)::

    OMP_NUM_THREADS=1 torchrun --nproc_per_node=1 benchmarks/kcenter_distributed.py --rows 200000 --dim 64
    OMP_NUM_THREADS=1 torchrun --nproc_per_node=2 benchmarks/kcenter_distributed.py --rows 200000 --dim 64
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from activelearn import distributed as D
from activelearn.ops import kcenter_greedy_distributed


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def _write_features(path: Path, n: int, d: int, k: int, seed: int, chunk: int = 50_000) -> None:
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(k, d)).astype(np.float32)
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        mm[s:e] = centers[rng.integers(k, size=e - s)] + rng.normal(size=(e - s, d)).astype(np.float32)
    mm.flush()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--blobs", type=int, default=50)
    p.add_argument("--budget", type=int, default=200)
    p.add_argument("--labeled", type=int, default=1000)
    p.add_argument("--chunk-size", type=int, default=65536)
    p.add_argument("--features", default=None, help=".npy file (created if missing); default: a temporary file")
    args = p.parse_args()
    torch.set_num_threads(1)
    D.init_from_env("gloo")
    path = Path(args.features) if args.features else Path(tempfile.gettempdir()) / f"kc_dist_{args.rows}x{args.dim}.npy"
    if not path.exists():
        D.on_main_process(_write_features, path, args.rows, args.dim, args.blobs, 0)
    D.barrier()
    a, b = D.shard_range(args.rows)
    local = np.load(path, mmap_mode="r")[a:b]
    labeled = np.random.default_rng(1).choice(args.rows, size=args.labeled, replace=False)
    D.barrier()
    start = time.perf_counter()
    picks = kcenter_greedy_distributed(local, args.budget, labeled=labeled, chunk_size=args.chunk_size)
    seconds = time.perf_counter() - start
    rss = D.all_gather_rows(torch.tensor([[_peak_rss_mib()]], dtype=torch.float64)).flatten().tolist()
    if D.is_main_process():
        print(json.dumps({
            "world": D.world_size(), "n": args.rows, "dim": args.dim, "budget": args.budget, "labeled": args.labeled,
            "seconds": round(seconds, 2), "peak_rss_mib_per_rank": [round(v) for v in rss],
            "picks_sha1": hashlib.sha1(picks.tobytes()).hexdigest()[:12], "first_picks": picks[:5].tolist(),
        }))
    D.cleanup()


if __name__ == "__main__":
    main()
