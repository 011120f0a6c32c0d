"""Repeat a two-process gloo test worker and count runs where a rank dies (teardown stress).

Runs ``tests/test_distributed.py``'s ``_ext_train_worker`` (``--worker ext``:
four ``Trainer.fit`` calls under ``DistributedDataParallel``: ncenet, dacs,
vaal, a batch-norm CNN) or ``_loop_worker`` (``--worker loop``: seven
three-cycle active-learning loops, one per deterministic strategy) with
``torch.multiprocessing.spawn`` ``--runs`` times and prints one line per run
and the number of failed runs.  A failure is a rank that exits abnormally,
e.g. SIGABRT with "terminate called without an active exception" at
interpreter exit (``docs/distributed.md``, "Process-group teardown").

Usage (from the repository root)::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/teardown_stress.py --worker ext --runs 20
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import test_distributed as T


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", choices=("ext", "loop"), default="ext")
    p.add_argument("--runs", type=int, default=20)
    a = p.parse_args()
    fn = {"ext": T._ext_train_worker, "loop": T._loop_worker}[a.worker]
    failed = 0
    for i in range(a.runs):
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            try:
                mp.spawn(fn, args=(T._free_port(), d), nprocs=T.WORLD, join=True)
                status = "ok"
            except Exception as exc:  # noqa: BLE001 - counted and reported
                failed += 1
                status = f"FAILED {exc!r}"
        print(f"run {i}: {time.perf_counter() - t0:.1f} s {status}", flush=True)
    print(f"{a.worker}: {failed}/{a.runs} runs failed", flush=True)


if __name__ == "__main__":
    main()
