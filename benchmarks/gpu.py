"""Selection kernels on CUDA against the device's copy bandwidth, in one run (issue 17).

Times, on one CUDA device, each kernel at the issue's sizes and compares it
with a bandwidth bound: the bytes the kernel must at least read, divided by
the bandwidth a plain device-to-device copy reaches in the same run
(``2 x bytes / seconds`` of ``dst.copy_(src)`` on a 2 GiB buffer):

* ``kcenter_plain`` / ``kcenter_auto``: :func:`activelearn.ops.kcenter_greedy`,
  1,000,000 x 512 clustered float32, 1,000 picks from 1,000 labeled rows.
  Bound: one read of the features per pick (what the plain full pass does;
  the pruned method can beat it).
* ``kcenter16_plain``: the same on the 1,000,000 x 16 unit DACS vectors
  (cosine), the yardstick of DACS in ``benchmarks/selection.py``.
* ``lsh``: :func:`activelearn.ops.lsh_density` on 1,000,000 x 16 with the
  buckets DACS uses (``max(100, 2 ceil(N / 4000))``).  Bound: one read of the
  vectors (the hash) -- far below what the sort and chunk sums need.
* ``dacs``: :func:`activelearn.strategies.dacs.dacs_select`, 1,000 picks.
  Bound: that of ``kcenter16_plain``; the ratio to the measured
  ``kcenter16_plain`` is printed as well (issue 17 asks for <= 1.5 on CPU).
* ``bald``: :func:`activelearn.mc_dropout.bald_scores` on 1,000,000 x 20 x 10
  MC log-probabilities (float32) + top-1,000.  Bound: one read of them.
* ``badge``: :func:`activelearn.ops.badge_kmeanspp`, 200,000 rows, 10
  classes, 512-d embeddings, 1,000 picks.  Bound: one read of the
  probabilities and embeddings per pick.
* ``kmeans_torch`` vs ``kmeans_sklearn``: :func:`activelearn.ops.kmeans`,
  200,000 x 64, k = 100, 20 iterations, torch on CUDA against scikit-learn
  on the host (the measurement that keeps or drops the torch path).

Each case runs once after a small warm-up of the same kernel; times include
``torch.cuda.synchronize()``.  Results go to ``--out`` (markdown, with the
device, torch version and the command).  Without CUDA the script prints that
it skipped and exits 0, leaving ``--out`` untouched.  ``--dry-run`` runs every
case at tiny sizes on the CPU (no bound: the copy is timed on the CPU too) so
that the script itself is tested without a GPU.

Usage (about 3-6 minutes on one H200; sized to stay under 10)::

    python benchmarks/gpu.py                      # writes benchmarks/results_gpu.md
    python benchmarks/gpu.py --dry-run --out /tmp/gpu_dry.md
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

FULL = {"n": 1_000_000, "dim": 512, "budget": 1000, "n_badge": 200_000, "n_kmeans": 200_000, "k": 100, "copy_bytes": 2 << 30}
TINY = {"n": 1000, "dim": 16, "budget": 5, "n_badge": 500, "n_kmeans": 500, "k": 5, "copy_bytes": 8 << 20}


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def timed(fn: Callable[[], Any], dev: torch.device) -> float:
    _sync(dev)
    t0 = time.perf_counter()
    fn()
    _sync(dev)
    return time.perf_counter() - t0


def copy_bandwidth(dev: torch.device, nbytes: int) -> float:
    """Bytes per second of ``dst.copy_(src)`` (read + write counted), best of 5."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=dev).uniform_()
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = min(timed(lambda: dst.copy_(src), dev) for _ in range(5))
    return 2 * nbytes / best


def clustered(n: int, d: int, dev: torch.device, seed: int = 0) -> torch.Tensor:
    """64 Gaussian clusters of random size and spread, generated on the device in blocks."""
    g = torch.Generator(device=dev).manual_seed(seed)
    centers = torch.randn(64, d, generator=g, device=dev)
    spread = torch.rand(64, generator=g, device=dev) * 0.9 + 0.1
    lab = torch.randint(64, (n,), generator=g, device=dev)
    out = torch.empty(n, d, device=dev)
    for s in range(0, n, 100_000):
        lb = lab[s : s + 100_000]
        out[s : s + lb.numel()] = centers[lb] + spread[lb, None] * torch.randn(lb.numel(), d, generator=g, device=dev)
    return out


def cases(size: dict[str, int], dev: torch.device) -> list[tuple[str, str, Callable[[], Any], float, Callable[[], Any]]]:
    """(name, shape text, kernel, bytes it must read, warm-up) per case; data made lazily inside."""
    from activelearn.mc_dropout import bald_scores
    from activelearn.ops import badge_kmeanspp, kcenter_greedy, kmeans, lsh_density
    from activelearn.strategies.dacs import dacs_select

    n, d, b = size["n"], size["dim"], size["budget"]
    x = clustered(n + 1000, d, dev)  # rows n.. are the labeled set
    lab = np.arange(n, n + 1000)
    z = torch.nn.functional.normalize(x[:, :16] @ torch.randn(16, 16, device=dev), dim=1)
    nb = max(100, 2 * math.ceil(n / 4000))
    lp = torch.log_softmax(torch.randn(n, 20, 10, device=dev) * 2, dim=-1)
    nbg = size["n_badge"]
    probs = torch.softmax(torch.randn(nbg, 10, device=dev) * 2, dim=1)
    emb = x[:nbg]
    km, k = x[: size["n_kmeans"], :64].contiguous(), size["k"]
    kms = f"{km.shape[0]} x {km.shape[1]}, k={k}, 20 it"
    f32 = 4
    return [
        ("kcenter_plain", f"{n} x {d}, b={b}", lambda: kcenter_greedy(x, b, labeled=lab, method="plain", device=dev), b * n * d * f32,
         lambda: kcenter_greedy(x, 2, labeled=lab, method="plain", device=dev)),
        ("kcenter_auto", f"{n} x {d}, b={b}", lambda: kcenter_greedy(x, b, labeled=lab, device=dev), b * n * d * f32,
         lambda: kcenter_greedy(x, 2, labeled=lab, device=dev)),
        ("kcenter16_plain", f"{n} x 16 cosine, b={b}", lambda: kcenter_greedy(z, b, labeled=lab, metric="cosine", method="plain", device=dev),
         b * n * 16 * f32, lambda: kcenter_greedy(z, 2, labeled=lab, metric="cosine", method="plain", device=dev)),
        ("lsh", f"{n} x 16, {nb} buckets", lambda: lsh_density(z[:n], nb, seed=0, device=dev), n * 16 * f32,
         lambda: lsh_density(z[:1000], 10, seed=0, device=dev)),
        ("dacs", f"{n} x 16, b={b}", lambda: dacs_select(z[:n], z[n:], b, seed=0, device=dev), b * n * 16 * f32,
         lambda: dacs_select(z[:2000], z[n:], 5, seed=0, device=dev)),
        ("bald", f"{n} x 20 x 10, top {b}", lambda: torch.topk(bald_scores(lp), b), n * 200 * f32, lambda: bald_scores(lp[:1000])),
        ("badge", f"{nbg} x 10 x {d}, b={b}", lambda: badge_kmeanspp(probs, emb, b, seed=0), b * nbg * (10 + d) * f32,
         lambda: badge_kmeanspp(probs[:1000], emb[:1000], 2, seed=0)),
        ("kmeans_torch", kms, lambda: kmeans(km, k, n_iter=20, seed=0, backend="torch"), 20 * km.numel() * f32,
         lambda: kmeans(km[:1000], 5, n_iter=2, seed=0, backend="torch")),
        ("kmeans_sklearn", kms + " (host)", lambda: kmeans(km.cpu(), k, n_iter=20, seed=0, backend="sklearn"), float("nan"),
         lambda: None),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results_gpu.md"))
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU (tests the script without a GPU)")
    ap.add_argument("--cases", default="", help="comma-separated subset of the case names")
    args = ap.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu.py: CUDA is not available: skipped (nothing written)")
        return 0
    dev = torch.device("cpu") if args.dry_run else torch.device("cuda")
    size = TINY if args.dry_run else FULL
    torch.manual_seed(0)
    bw = copy_bandwidth(dev, size["copy_bytes"])
    name = "CPU (dry run)" if args.dry_run else torch.cuda.get_device_name(dev)
    print(f"device: {name}; copy bandwidth {bw / 1e9:.1f} GB/s", flush=True)
    wanted = {c for c in args.cases.split(",") if c}
    rows, secs = [], {}
    for case, shape, fn, nbytes, warm in cases(size, dev):
        if wanted and case not in wanted:
            continue
        warm()
        s = timed(fn, dev)
        secs[case] = s
        bound = nbytes / bw
        rows.append(f"| {case} | {shape} | {s:.4g} | {bound:.4g} | {s / bound:.3g} |" if np.isfinite(bound) else f"| {case} | {shape} | {s:.4g} | | |")
        print(rows[-1], flush=True)
    notes = []
    if "dacs" in secs and "kcenter16_plain" in secs:
        notes.append(f"DACS / plain 16-d k-center of the same budget: {secs['dacs'] / secs['kcenter16_plain']:.2f}")
    if "lsh" in secs and "kcenter16_plain" in secs:
        notes.append(f"LSH density / plain 16-d k-center: {secs['lsh'] / secs['kcenter16_plain']:.2f}")
    if "kmeans_torch" in secs and "kmeans_sklearn" in secs:
        notes.append(f"k-means torch on the device / scikit-learn on the host: {secs['kmeans_torch'] / secs['kmeans_sklearn']:.2f}")
    text = "\n".join([
        "# Selection kernels on a GPU against the copy bandwidth",
        "",
        f"Written by `benchmarks/gpu.py` ({'dry run: tiny sizes on the CPU, not a GPU result' if args.dry_run else 'one run on the device below'}).",
        f"Command: `python benchmarks/gpu.py {' '.join(argv if argv is not None else sys.argv[1:])}`".rstrip() + "",
        "",
        f"Device: {name}; torch {torch.__version__}; host {platform.machine()}; copy bandwidth {bw / 1e9:.1f} GB/s "
        "(`dst.copy_(src)`, read + write counted, best of 5).",
        "",
        "`bound` = bytes the kernel must at least read / copy bandwidth (see the script's docstring); `ratio` = seconds / bound.",
        "",
        "| case | size | seconds | bound (s) | ratio |",
        "|---|---|---:|---:|---:|",
        *rows,
        "",
        *[f"- {n}" for n in notes],
        "",
    ])
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
