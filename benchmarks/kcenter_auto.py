"""Break-even of ``kcenter_greedy(method="auto")``: plain vs pruned CPU time over sizes and dimensions.

Same seeded clustered features as ``benchmarks/kcenter.py`` (100 Gaussian
blobs), one torch thread, budget 1,000, no labeled rows; CPU time of the
process (``time.process_time``), which is steadier than wall time on a shared
machine.  The rule in ``activelearn.ops.kcenter._AUTO_MIN_WORK`` comes from
this table.

Example::

    PYTHONPATH=src python benchmarks/kcenter_auto.py --cases 20000x512,50000x128,200000x64,100000x32,400000x16,40000x64
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from kcenter import make_blobs

from activelearn.ops.kcenter import _AUTO_MIN_WORK, kcenter_greedy


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="20000x512,50000x128,200000x64,100000x32,400000x16,40000x64")
    ap.add_argument("--budget", type=int, default=1000)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(f"$ python {' '.join(sys.argv)}\n\nload average at start {os.getloadavg()[0]:.2f}, 1 torch thread, budget {args.budget}\n")
    print("| N x d | N * d | plain CPU (s) | pruned CPU (s) | plain / pruned | auto picks | same picks |")
    print("|---|---:|---:|---:|---:|---|---|")
    for case in args.cases.split(","):
        n, d = (int(v) for v in case.split("x"))
        X = make_blobs(n, d, 100, 0)
        out, cpu = {}, {}
        for m in ("plain", "pruned"):
            c = time.process_time()
            out[m] = kcenter_greedy(X, args.budget, method=m, seed=0)
            cpu[m] = time.process_time() - c
        auto = "pruned" if n * d >= _AUTO_MIN_WORK else "plain"
        print(f"| {n:,} x {d} | {n * d:.1e} | {cpu['plain']:.2f} | {cpu['pruned']:.2f} | {cpu['plain'] / cpu['pruned']:.2f} | {auto} "
              f"| {'yes' if np.array_equal(out['plain'], out['pruned']) else 'NO'} |", flush=True)
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
