"""Peak memory and time of BADGE's factorised k-means++ on a large synthetic pool.

Run (writes benchmarks/results_badge_memory.md)::

    PYTHONPATH=src python benchmarks/badge_memory.py --n 200000 --d 512 --classes 10 --budget 100

The explicit gradient embeddings of this pool would take ``n * classes * d * 4``
bytes (4.1 GB in float32); the kernel works from the probabilities and the
embeddings only.  Peak resident memory is the process's ``ru_maxrss``, which
includes the Python/torch runtime and the synthetic inputs themselves.
"""

from __future__ import annotations

import argparse
import platform
import resource
import time
from pathlib import Path

import torch

from activelearn.ops.badge import badge_kmeanspp

GIB = 1024**3


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--chunk-size", type=int, default=16384)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit-gib", type=float, default=3.0)
    ap.add_argument("--out", default=str(Path(__file__).with_name("results_badge_memory.md")))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    rss_start = peak_rss_bytes()
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(args.n, args.d, generator=g)
    probs = torch.softmax(3.0 * torch.randn(args.n, args.classes, generator=g), dim=1)
    rss_inputs = peak_rss_bytes()
    t0 = time.perf_counter()
    picks = badge_kmeanspp(probs, emb, args.budget, seed=0, chunk_size=args.chunk_size)
    secs = time.perf_counter() - t0
    peak = peak_rss_bytes()
    assert len(set(picks.tolist())) == args.budget

    explicit = args.n * args.classes * args.d * 4
    verdict = "PASS" if peak < args.limit_gib * GIB else "FAIL"
    cmd = (
        f"PYTHONPATH=src python benchmarks/badge_memory.py --n {args.n} --d {args.d} --classes {args.classes} "
        f"--budget {args.budget} --chunk-size {args.chunk_size} --threads {args.threads}"
    )
    text = f"""# BADGE memory benchmark (factorised k-means++ on gradient embeddings)

Command: `{cmd}`

Machine: {cpu_name()}, {args.threads} torch thread(s), torch {torch.__version__}, Python {platform.python_version()}, {platform.system()} {platform.release()}

| quantity | value |
| --- | --- |
| pool | {args.n:,} x {args.d} embeddings (float32), {args.classes} classes |
| budget | {args.budget} |
| explicit U x C x d gradients would need | {explicit / GIB:.2f} GiB (float32) |
| peak RSS after imports | {rss_start / GIB:.2f} GiB |
| peak RSS with the synthetic inputs | {rss_inputs / GIB:.2f} GiB |
| peak RSS after the selection (whole process) | {peak / GIB:.2f} GiB |
| limit | {args.limit_gib:.1f} GiB: **{verdict}** |
| selection time | {secs:.1f} s ({secs / args.budget * 1000:.0f} ms per pick) |
"""
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
