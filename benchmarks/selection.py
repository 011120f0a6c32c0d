"""Time and peak memory of DACS selection and its parts at growing pool sizes.

Each case runs in its own subprocess; its peak resident memory is that
process's ``VmHWM`` from ``/proc/self/status`` (so it includes the Python +
torch baseline, reported separately as the ``baseline`` case).  Features are
synthetic and clustered: 64 Gaussian clusters of random size and spread in
``d = 512`` backbone dimensions, projected by a fixed random matrix to the
16-d auxiliary space and L2-normalised (what :class:`AuxiliaryHead` serves).

Cases per pool size ``N`` (labeled set: 1,000 extra vectors; budget 1,000):

* ``dacs``: :func:`activelearn.strategies.dacs.dacs_select` end to end
  (LSH density, Jenks, budgets, per-group k-center);
* ``lsh``: :func:`activelearn.ops.lsh_density` alone, with the buckets DACS
  uses by default (``max(n_buckets, 2 ceil(N / 4000))``, i.e. chunks of at most
  2,000 rows: linear in N);
* ``lsh100``: the same with exactly ``--n-buckets`` buckets (the paper's fixed
  100: chunks of N / 100 rows, quadratic in N);
* ``kcenter_plain``: :func:`activelearn.ops.kcenter_greedy` (cosine,
  ``method="plain"``: one pass over the pool per pick) over the whole pool
  from the labeled set: the yardstick DACS and LSH are compared with (ratios
  printed at the end of each size);
* ``jenks``: :func:`activelearn.ops.jenks_breaks` on LSH densities (computed
  before timing, with ``max(n_buckets, N / 1000)`` buckets so that chunks
  hold at most 1,000 rows: only the values matter here);
* ``jenkspy``: ``jenkspy.jenks_breaks`` on the same values (only up to
  ``--jenkspy-max``: it is O(k N^2));
* ``kcenter``: the same with ``method="auto"``;
* ``knn``: exact :func:`activelearn.ops.knn_density` (only up to ``--knn-max``: O(N^2)).

Usage::

    python benchmarks/selection.py --sizes 10000,50000,200000,1000000 --device cpu
    python benchmarks/selection.py --sizes 1000000 --cases dacs --n-buckets 1000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

CASES = ("dacs", "lsh", "kcenter_plain", "lsh100", "jenks", "jenkspy", "kcenter", "knn")


def features(n: int, seed: int = 0, d: int = 512, d_aux: int = 16):  # noqa: ANN201
    """Clustered backbone features projected to unit aux vectors (n + 1000 rows; first n unlabeled)."""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    total = n + 1000
    k = 64
    centers = rng.normal(size=(k, d)).astype(np.float32)
    weights = rng.dirichlet(np.ones(k))
    spread = rng.uniform(0.1, 1.0, size=k).astype(np.float32)
    proj = rng.normal(size=(d, d_aux)).astype(np.float32) / np.sqrt(d)
    out = np.empty((total, d_aux), dtype=np.float32)
    labels = rng.choice(k, size=total, p=weights)
    for s in range(0, total, 100_000):  # never hold all d = 512 features at once
        lab = labels[s : s + 100_000]
        x = centers[lab] + spread[lab, None] * rng.standard_normal((lab.size, d), dtype=np.float32)
        out[s : s + lab.size] = x @ proj
    z = torch.nn.functional.normalize(torch.from_numpy(out), dim=1)
    return z[:n], z[n:]


def vmhwm_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_case(case: str, n: int, device: str, budget: int, n_buckets: int) -> dict:
    import numpy as np
    import torch

    from activelearn.ops import jenks_breaks, kcenter_greedy, knn_density, lsh_density
    from activelearn.strategies.dacs import dacs_select

    if case == "baseline":
        return {"seconds": 0.0, "cpu_seconds": 0.0, "peak_rss_mib": vmhwm_mib()}
    zu, zl = features(n)
    dens = None
    if case in ("jenks", "jenkspy"):  # values: LSH densities, buckets scaled so that setup stays linear-time
        nb = max(n_buckets, 2 * -(-n // 2000))
        dens = lsh_density(zu, n_buckets=nb, seed=0, device=device).double().cpu().numpy()
    zu, zl = zu.to(device), zl.to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    t0 = time.perf_counter()
    c0 = time.process_time()
    info = ""
    if case == "dacs":
        picks, extra = dacs_select(zu, zl, budget, seed=0, n_buckets=n_buckets, device=device, return_info=True)
        info = f"groups {extra['sizes'].tolist()} budgets {extra['budgets'].tolist()}"
    elif case == "lsh":
        nb = max(n_buckets, 2 * -(-n // 4000))  # dacs_select's default max_chunk=2000
        lsh_density(zu, n_buckets=nb, seed=0, device=device)
        info = f"{nb} buckets"
    elif case == "lsh100":
        lsh_density(zu, n_buckets=n_buckets, seed=0, device=device)
        info = f"{n_buckets} buckets"
    elif case == "jenks":
        info = str([round(b, 3) for b in jenks_breaks(dens, 4)])
    elif case == "jenkspy":
        import jenkspy

        info = str([round(float(b), 3) for b in jenkspy.jenks_breaks(dens, n_classes=4)])
    elif case in ("kcenter", "kcenter_plain"):
        feats = torch.cat([zu, zl])
        method = "plain" if case == "kcenter_plain" else "auto"
        kcenter_greedy(feats, budget, labeled=np.arange(n, n + zl.shape[0]), metric="cosine", device=device, method=method)
    elif case == "knn":
        knn_density(zu, k=20, metric="cosine", device=device)
    else:
        raise SystemExit(f"unknown case {case!r}")
    sync()
    seconds = time.perf_counter() - t0
    out = {"seconds": seconds, "cpu_seconds": time.process_time() - c0, "peak_rss_mib": vmhwm_mib(), "info": info}
    if device.startswith("cuda"):
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="DACS selection benchmark")
    p.add_argument("--sizes", default="10000,50000,200000,1000000")
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--device", default=None, help="cpu, cuda, or both (default: cpu, plus cuda when present)")
    p.add_argument("--budget", type=int, default=1000)
    p.add_argument("--n-buckets", type=int, default=100, help="LSH buckets (paper: 100)")
    p.add_argument("--jenkspy-max", type=int, default=50000)
    p.add_argument("--knn-max", type=int, default=50000)
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per case before it is reported as timed out")
    p.add_argument("--_one", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._one:
        case, n, device = args._one
        print(json.dumps(run_case(case, int(n), device, args.budget, args.n_buckets)))
        return
    import torch

    devices = [args.device] if args.device and args.device != "both" else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    sizes = [int(s) for s in args.sizes.split(",")]
    cases = [c for c in args.cases.split(",") if c]
    print(f"# DACS selection benchmark\n\n$ python {' '.join(sys.argv)}\n\nload average at start {os.getloadavg()[0]:.2f}; machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s), "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, budget {args.budget}, n_buckets {args.n_buckets}\n")
    print("| device | N | case | seconds | CPU seconds | peak RSS (MiB) | notes |\n|---|---:|---|---:|---:|---:|---|", flush=True)
    for device in devices:
        todo = [("baseline", 0)] + [(c, n) for n in sizes for c in cases]
        secs: dict[tuple[str, int], float] = {}
        cpus: dict[tuple[str, int], float] = {}
        for case, n in todo:
            if (case == "jenkspy" and n > args.jenkspy_max) or (case == "knn" and n > args.knn_max):
                print(f"| {device} | {n:,} | {case} | skipped | | | O(N^2): above --{case}-max |", flush=True)
                continue
            cmd = [sys.executable, __file__, "--budget", str(args.budget), "--n-buckets", str(args.n_buckets), "--_one", case, str(n), device]
            try:
                res = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                print(f"| {device} | {n:,} | {case} | > {args.timeout:.0f} | | | timed out |", flush=True)
                continue
            if res.returncode != 0:
                print(f"| {device} | {n:,} | {case} | error | | | {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode} |", flush=True)
                continue
            r = json.loads(res.stdout.strip().splitlines()[-1])
            notes = r.get("info", "")
            if "peak_cuda_mib" in r:
                notes = f"peak CUDA {r['peak_cuda_mib']:.0f} MiB; {notes}"
            print(f"| {device} | {n:,} | {case} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | {r['peak_rss_mib']:.0f} | {notes} |", flush=True)
            secs[(case, n)] = r["seconds"]
            cpus[(case, n)] = r["cpu_seconds"]
        for n in sizes:  # ratios to one plain 16-d k-center of the same budget, measured in this run
            if ("kcenter_plain", n) in secs:
                ref, cref = secs[("kcenter_plain", n)], cpus[("kcenter_plain", n)]
                for c in ("dacs", "lsh", "lsh100", "kcenter"):
                    if (c, n) in secs:
                        print(f"| {device} | {n:,} | {c} / kcenter_plain | {secs[(c, n)] / ref:.2f}x | {cpus[(c, n)] / cref:.2f}x | | same run |", flush=True)
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
