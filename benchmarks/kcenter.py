"""Benchmark k-center greedy: plain vs pruned vs a naive full matrix vs peers.

Every measurement runs in its own subprocess, which generates the same seeded
clustered features (Gaussian blobs, float32, generated in chunks) and then
times one selection; the peak resident memory of that process is read from
``/proc/self/status`` (``VmHWM``), so peaks are clean and include the data.

Example::

    python benchmarks/kcenter.py --sizes 10000,50000,200000,1000000 --dim 512 \\
        --budget 1000 --device cpu --methods plain,pruned,naive,peers \\
        --peer-python /tmp/peers/bin/python

Features (``--features``): ``blobs`` (default; seeded Gaussian blobs made in
each worker), or real ones made once by the driver and shared through a
``.npy`` file: ``mnist-pixels`` (Repeated MNIST, 180,000 x 784 normalised
pixels, from :func:`activelearn.datasets.repeated_mnist`; ``--sizes`` take its
first rows) and ``mnist-embed`` (the 256-d penultimate activations of the
784-256-256-10 MLP of the DACS paper's RMNIST setup, trained here for
``--embed-epochs`` epochs of Adam on the 60,000 clean MNIST training images,
then run over the same 180,000 rows).  MNIST is looked up as usual (set
``ACTIVELEARN_DATA``, e.g. ``/work/shared/data``).

Peers: scikit-activeml's ``CoreSet`` (install it into a separate venv, e.g.
``python -m venv --system-site-packages /tmp/peers && /tmp/peers/bin/pip
install scikit-activeml``, and pass ``--peer-python``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024.0**3


# --------------------------------------------------------------------------- #
# worker side
# --------------------------------------------------------------------------- #
def _status_gib(key: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024 / GIB
    return float("nan")


def make_blobs(n: int, dim: int, clusters: int, seed: int, chunk: int = 65536) -> Any:
    """Seeded clustered float32 features, generated chunk by chunk into one tensor."""
    import torch

    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(clusters, dim, generator=g)
    sigma = 0.15 + 0.35 * torch.rand(clusters, generator=g)
    weights = torch.rand(clusters, generator=g) + 0.2
    X = torch.empty(n, dim, dtype=torch.float32)
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        lab = torch.multinomial(weights, e - s, replacement=True, generator=g)
        X[s:e] = centers[lab] + sigma[lab, None] * torch.randn(e - s, dim, generator=g)
    return X


def naive_kcenter(X: Any, budget: int, seed: int) -> np.ndarray:
    """Textbook version: the full N x N distance matrix, then the greedy on it."""
    import torch

    sq = (X * X).sum(1)
    D = (sq[:, None] + sq[None, :] - 2.0 * (X @ X.T)).clamp_min_(0).sqrt_()
    n = X.shape[0]
    p = int(np.random.default_rng(seed).integers(n))
    picks = [p]
    mind = D[p].clone()
    mind[p] = -float("inf")
    while len(picks) < budget:
        p = int(torch.argmax(mind))
        picks.append(p)
        torch.minimum(mind, D[p], out=mind)
        mind[p] = -float("inf")
    return np.asarray(picks, dtype=np.int64)


def peer_skactiveml(X: Any, budget: int, seed: int) -> np.ndarray:
    from skactiveml.pool import CoreSet

    Xn = X.numpy()
    y = np.full(Xn.shape[0], np.nan)
    return np.asarray(CoreSet(random_state=seed).query(Xn, y, batch_size=budget), dtype=np.int64)


def real_features(kind: str, epochs: int, seed: int, path: str) -> int:
    """Write Repeated-MNIST pixels or trained-MLP embeddings (float32) to ``path``; returns the dimension."""
    import torch

    sys.path.insert(0, str(ROOT / "src"))
    from activelearn import datasets

    rm = datasets.repeated_mnist()
    X = rm.train_x.reshape(rm.train_x.shape[0], -1).float()
    if kind == "mnist-embed":
        torch.manual_seed(seed)
        net = torch.nn.Sequential(
            torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)
        )
        clean = datasets.load("mnist")
        cx, cy = clean.train_x.reshape(clean.train_x.shape[0], -1).float(), clean.train_y
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            for idx in torch.randperm(cx.shape[0], generator=g).split(128):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(net(cx[idx]), cy[idx]).backward()
                opt.step()
        body = net[:4]
        with torch.no_grad():
            X = torch.cat([body(X[s : s + 8192]) for s in range(0, X.shape[0], 8192)])
    np.save(path, X.numpy().astype(np.float32))
    return int(X.shape[1])


def worker(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.features == "blobs":
        X = make_blobs(args.n, args.dim, args.clusters, args.seed)
    else:
        X = torch.from_numpy(np.array(np.load(args.feat_file, mmap_mode="r")[: args.n]))
    if args.device != "cpu":
        X = X.to(args.device)
    # imports before the clock (ours and the peer's alike): the time is the selection's
    if args.method in ("plain", "pruned"):
        sys.path.insert(0, str(ROOT / "src"))
        from activelearn.ops.kcenter import kcenter_greedy
    elif args.method == "skactiveml":
        import skactiveml.pool  # noqa: F401
    base = _status_gib("VmRSS")
    t0 = time.perf_counter()
    c0 = time.process_time()
    if args.method in ("plain", "pruned"):
        picks = kcenter_greedy(X, args.budget, method=args.method, seed=args.seed, device=args.device)
    elif args.method == "naive":
        picks = naive_kcenter(X, args.budget, args.seed)
    elif args.method == "skactiveml":
        picks = peer_skactiveml(X.cpu(), args.budget, args.seed)
    else:
        raise SystemExit(f"unknown method {args.method!r}")
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    np.save(args.out, picks)
    print(json.dumps({"time": elapsed, "cpu": cpu, "peak": _status_gib("VmHWM"), "base": base}))


# --------------------------------------------------------------------------- #
# driver side
# --------------------------------------------------------------------------- #
def run_one(python: str, method: str, n: int, args: argparse.Namespace, out: str) -> dict[str, Any]:
    cmd = [
        python, str(Path(__file__).resolve()), "--_worker", "--_method", method, "--_n", str(n),
        "--_out", out, "--dim", str(args.dim), "--budget", str(args.budget), "--device", args.device,
        "--clusters", str(args.clusters), "--seed", str(args.seed), "--threads", str(args.threads),
        "--features", args.features, "--_feat", args.feat_file or "",
    ]
    env = dict(os.environ)
    if args.threads:  # the peers' numpy BLAS too, not only torch
        env.update({k: str(args.threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {args.timeout} s"}
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"failed (rc {proc.returncode}): {last[:120]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peer_available(python: str | None) -> bool:
    if not python or not Path(python).exists():
        return False
    return subprocess.run([python, "-c", "import skactiveml.pool"], capture_output=True).returncode == 0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,50000,200000,1000000")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--methods", default="plain,pruned,naive,peers")
    ap.add_argument("--clusters", type=int, default=100, help="number of Gaussian blobs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per measurement")
    ap.add_argument("--naive-max-gb", type=float, default=4.0, help="largest N x N matrix to try")
    ap.add_argument("--peer-python", default=None, help="interpreter with scikit-activeml installed")
    ap.add_argument("--features", default="blobs", choices=("blobs", "mnist-pixels", "mnist-embed"))
    ap.add_argument("--embed-epochs", type=int, default=2, help="training epochs of the MLP for mnist-embed")
    ap.add_argument("--_feat", default="", help=argparse.SUPPRESS)
    ap.add_argument("--_worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_method", help=argparse.SUPPRESS)
    ap.add_argument("--_n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--_out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.feat_file = args._feat or None
    if args._worker:
        args.n, args.method, args.out = args._n, args._method, args._out
        worker(args)
        return

    sizes = [int(s) for s in args.sizes.split(",") if s]
    methods = [m for m in args.methods.split(",") if m]
    print("$ python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])]))
    tmp_feat = tempfile.TemporaryDirectory() if args.features != "blobs" else None
    if tmp_feat is not None:
        args.feat_file = os.path.join(tmp_feat.name, "features.npy")
        args.dim = real_features(args.features, args.embed_epochs, args.seed, args.feat_file)
        rows = np.load(args.feat_file, mmap_mode="r").shape[0]
        sizes = [min(n, rows) for n in sizes]
        what = {"mnist-pixels": "Repeated MNIST pixels", "mnist-embed": f"Repeated MNIST, penultimate layer of an MLP trained {args.embed_epochs} epoch(s)"}[args.features]
    else:
        what = f"clustered float32 features: {args.clusters} Gaussian blobs"
    print(
        f"\n{what}, d={args.dim}, budget={args.budget}, "
        f"device={args.device}, torch threads={args.threads or 'default'}, cpu count={os.cpu_count()}, "
        f"load average at start={os.getloadavg()[0]:.2f}\n"
    )
    print("| N | method | time (s) | CPU time (s) | peak RSS (GiB) | RSS after data (GiB) | picks == plain | note |")
    print("|---:|---|---:|---:|---:|---:|---|---|")
    has_peer = "peers" in methods and peer_available(args.peer_python)
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            times: dict[str, float] = {}
            cpus: dict[str, float] = {}
            for method in methods:
                python, name = sys.executable, method
                if method == "peers":
                    name = "skactiveml CoreSet"
                    if not has_peer:
                        print(f"| {n:,} | {name} | | | | | | not installed |", flush=True)
                        continue
                    python, method = args.peer_python, "skactiveml"
                if method == "naive":
                    need = n * n * 4 / GIB
                    if need > args.naive_max_gb:
                        print(f"| {n:,} | naive N x N | | | | | | skipped: would need {need:.1f} GB |", flush=True)
                        continue
                out = os.path.join(tmp, f"{method}_{n}.npy")
                res = run_one(python, method, n, args, out)
                if "error" in res:
                    print(f"| {n:,} | {name} | | | | | | {res['error']} |", flush=True)
                    continue
                times[method] = res["time"]
                cpus[method] = res["cpu"]
                same = ""
                ref = os.path.join(tmp, f"plain_{n}.npy")
                if method != "plain" and os.path.exists(ref):
                    same = "yes" if np.array_equal(np.load(ref), np.load(out)) else "NO"
                note = {
                    "skactiveml": "first pick from its own RNG",
                    "naive": "float32 gemm rounds differently: near-ties may differ" if same == "NO" else "",
                }.get(method, "")
                print(
                    f"| {n:,} | {name} | {res['time']:.2f} | {res['cpu']:.2f} | {res['peak']:.2f} | {res['base']:.2f} | {same} | {note} |",
                    flush=True,
                )
            for other, label in (("plain", "plain"), ("skactiveml", "skactiveml CoreSet")):
                if other in times and "pruned" in times:
                    print(
                        f"| {n:,} | speed-up ({label} / pruned) | {times[other] / times['pruned']:.1f}x | "
                        f"{cpus[other] / cpus['pruned']:.1f}x | | | | same run |",
                        flush=True,
                    )
    print(f"\nload average at end={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
