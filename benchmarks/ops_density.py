"""Benchmark of the DACS density kernels: jenks_breaks vs jenkspy, lsh_density, knn_density.

Each case runs in its own subprocess so that its peak memory (``VmHWM`` from
``/proc/self/status``, the peak resident set size) is its own.  Usage::

    PYTHONPATH=src python benchmarks/ops_density.py --device cpu
    PYTHONPATH=src python benchmarks/ops_density.py --device cuda

Prints a markdown table.  jenkspy (O(k n^2)) runs up to 100k values only;
kNN density (O(N^2)) runs only where its estimated time (extrapolated
quadratically from the largest size run so far) is under ``--knn-budget``
seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

JENKS_SIZES = [10_000, 50_000, 100_000, 1_000_000]
JENKSPY_MAX = 100_000
DENSITY_SIZES = [10_000, 50_000, 200_000, 1_000_000]
DIM = 16


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def _values(n: int) -> Any:
    """1-D density-like values: a skewed mixture (float64)."""
    import numpy as np

    rng = np.random.default_rng(0)
    parts = [rng.normal(0, 1, n // 2), rng.normal(6, 2, n // 4), rng.exponential(3, n - n // 2 - n // 4) + 10]
    return rng.permutation(np.concatenate(parts))


def _vectors(n: int) -> Any:
    """``n`` x 16 float32 vectors from 50 Gaussian blobs of different spreads."""
    import numpy as np

    rng = np.random.default_rng(0)
    n_blobs = 50
    centers = rng.normal(0, 3, size=(n_blobs, DIM))
    spreads = np.linspace(0.1, 2.0, n_blobs)
    which = rng.integers(0, n_blobs, size=n)
    x = centers[which] + rng.normal(size=(n, DIM)) * spreads[which, None]
    return x.astype(np.float32)


def run_case(case: str, n: int, k: int, device: str) -> dict[str, Any]:
    """Run one case in this process; return timing and memory."""
    import torch

    from activelearn.ops.density import knn_density, lsh_density
    from activelearn.ops.jenks import jenks_breaks

    result: dict[str, Any] = {}
    if case in ("jenks", "jenkspy"):
        x = _values(n)
        rss0 = _status_kib("VmRSS")
        t = time.perf_counter()
        if case == "jenks":
            breaks = jenks_breaks(x, k)
        else:
            import jenkspy

            breaks = [float(v) for v in jenkspy.jenks_breaks(x, n_classes=k)]
        result["seconds"] = time.perf_counter() - t
        result["breaks"] = breaks
    else:
        x = torch.from_numpy(_vectors(n)).to(device)
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        rss0 = _status_kib("VmRSS")
        t = time.perf_counter()
        if case == "lsh":
            out = lsh_density(x, 100, 1, seed=0, device=device)
        else:
            # memory O(chunk * N): keep a chunk's distance block at about 2**26 floats
            out = knn_density(x, 20, chunk_size=max(1, 2**26 // n), device=device)
        if device == "cuda":
            torch.cuda.synchronize()
            result["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
        result["seconds"] = time.perf_counter() - t
        result["checksum"] = float(out.double().mean())
    result["rss_before_mib"] = rss0 / 1024
    result["peak_rss_mib"] = _status_kib("VmHWM") / 1024
    return result


def _spawn(case: str, n: int, k: int, device: str, timeout: float) -> dict[str, Any] | None:
    cmd = [sys.executable, __file__, "--_case", case, "--_n", str(n), "--_k", str(k), "--device", device]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0:
        raise RuntimeError(f"case {case} n={n} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt_mem(r: dict[str, Any]) -> str:
    s = f"{r['peak_rss_mib']:.0f} (before call {r['rss_before_mib']:.0f})"
    if "cuda_peak_mib" in r:
        s += f"; CUDA peak {r['cuda_peak_mib']:.0f}"
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per case before giving up")
    ap.add_argument("--knn-budget", type=float, default=240.0, help="skip kNN cases estimated to take longer")
    ap.add_argument("--_case", help=argparse.SUPPRESS)
    ap.add_argument("--_n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--_k", type=int, default=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._case:
        print(json.dumps(run_case(args._case, args._n, args._k, args.device)))
        return

    import torch

    print(f"# ops_density benchmark, device={args.device}")
    print()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU core(s), torch threads {torch.get_num_threads()}")
    if args.device == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(0)}")
    print("Memory = peak resident set size (VmHWM) of the case's own process, MiB.")
    print()
    print("## jenks_breaks (ours, divide-and-conquer DP) vs jenkspy (Fisher O(k n^2)), float64 values")
    print()
    print("| n | k | ours s | ours peak MiB | jenkspy s | jenkspy peak MiB | speed-up | same breaks |")
    print("|---|---|---|---|---|---|---|---|")
    for n in JENKS_SIZES:
        for k in (4, 8) if n == JENKS_SIZES[-1] else (4,):
            ours = _spawn("jenks", n, k, "cpu", args.timeout)
            assert ours is not None
            if n <= JENKSPY_MAX:
                ref = _spawn("jenkspy", n, k, "cpu", args.timeout)
            else:
                ref = None
            if ref is None:
                ref_cols = "skipped (O(k n^2), hours) | - | - | -"
            else:
                same = "yes" if ref["breaks"] == ours["breaks"] else "NO"
                ref_cols = (
                    f"{ref['seconds']:.3f} | {_fmt_mem(ref)} | {ref['seconds'] / ours['seconds']:.0f}x | {same}"
                )
            print(f"| {n:,} | {k} | {ours['seconds']:.3f} | {_fmt_mem(ours)} | {ref_cols} |", flush=True)
    print()
    print(f"## lsh_density (100 buckets, 1 round) and knn_density (k=20, cosine), {DIM}-d clustered float32")
    print()
    print("| N | lsh s | lsh peak MiB | knn s | knn peak MiB |")
    print("|---|---|---|---|---|")
    last_knn: tuple[int, float] | None = None
    for n in DENSITY_SIZES:
        lsh = _spawn("lsh", n, 4, args.device, args.timeout)
        lsh_cols = "timed out | -" if lsh is None else f"{lsh['seconds']:.3f} | {_fmt_mem(lsh)}"
        estimate = None if last_knn is None else last_knn[1] * (n / last_knn[0]) ** 2
        if estimate is not None and estimate > args.knn_budget:
            knn_cols = f"skipped (estimated {estimate:.0f} s > {args.knn_budget:.0f} s budget) | -"
        else:
            knn = _spawn("knn", n, 4, args.device, args.timeout)
            if knn is None:
                knn_cols = "timed out | -"
            else:
                knn_cols = f"{knn['seconds']:.3f} | {_fmt_mem(knn)}"
                last_knn = (n, knn["seconds"])
        print(f"| {n:,} | {lsh_cols} | {knn_cols} |", flush=True)


if __name__ == "__main__":
    main()
