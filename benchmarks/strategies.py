"""Selection cost of every registered strategy on Repeated MNIST (180,000 samples), b = 500.

For each name in :func:`activelearn.strategies.available` (so strategies
registered later are picked up without editing this file), a fresh
subprocess builds the RMNIST loop (:func:`activelearn.experiment.make_loop`,
the DACS paper's 784-256-256-10 MLP, 500 seeded initial labels), trains the
MLP for ``--epochs`` epochs (the strategy's own model extensions included),
then times one selection of ``b`` samples:

* one call: the network runs over the pool (the model caches its outputs)
  and the strategy selects: ``total``;
* ``inference``: the outputs that call left in the model's cache (names and
  rows) are computed again, timed on their own;
* ``selection = total - inference``.

Peak memory is that subprocess's ``VmHWM`` after the first call, minus its
value before it (``peak - before``: what inference plus selection added on top
of the loaded data and the trained model), and the absolute peak.

Peers (same pool, same trained model's outputs, timed on their own):
``entropy`` beside baal's ``Entropy`` heuristic on the cached probabilities,
``coreset`` beside scikit-activeml's ``CoreSet`` on the cached embeddings
(``--peer-python`` names an interpreter where they are installed).  Add a
peer for another strategy by adding an entry to :data:`PEERS`
(e.g. ``bald``: baal's ``BALD``; ``badge``: scikit-activeml's ``Badge``).

Results are appended to ``--jsonl`` one strategy at a time (a re-run skips
the names already there unless ``--redo``), and the markdown table
``--md`` is rewritten from all rows after each one.

Example::

    ACTIVELEARN_DATA=/work/shared/data PYTHONPATH=src python benchmarks/strategies.py \\
        --peer-python /tmp/peers/bin/python
    ... --strategies entropy,coreset --redo
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024.0**2


def status_mib(key: str) -> float:
    """A field of /proc/self/status (VmHWM, VmRSS...) in MiB; NaN when absent."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --------------------------------------------------------------------------- #
# peers: name -> (output the peer reads, function(values, budget, seed) -> indices)
# --------------------------------------------------------------------------- #
def _peer_baal_entropy(probs: np.ndarray, budget: int, seed: int) -> np.ndarray:
    from baal.active.heuristics import Entropy

    return np.asarray(Entropy()(probs))[:budget]


def _peer_skactiveml_coreset(emb: np.ndarray, budget: int, seed: int) -> np.ndarray:
    from skactiveml.pool import CoreSet

    y = np.full(emb.shape[0], np.nan)
    return np.asarray(CoreSet(random_state=seed).query(emb, y, batch_size=budget))


MC_SAMPLES = 20  # our bald's default number of MC-dropout passes


def _peer_baal_bald(mc: np.ndarray, budget: int, seed: int) -> np.ndarray:
    """baal's BALD on our consistent MC-dropout probabilities (baal wants N x C x S)."""
    from baal.active.heuristics import BALD

    probs = mc.reshape(mc.shape[0], MC_SAMPLES, -1).transpose(0, 2, 1)
    return np.asarray(BALD()(probs))[:budget]


def _peer_skactiveml_badge(values: np.ndarray, budget: int, seed: int) -> np.ndarray:
    """scikit-activeml's Badge on our cached probabilities and embeddings (first 10 columns: probs).

    Badge asks a classifier for ``predict_proba(X, return_embeddings=True)``; a
    classifier that returns the cached rows (X holds the row number) feeds it
    exactly what our ``badge`` reads, so only the selection is compared.
    """
    from skactiveml.base import SkactivemlClassifier
    from skactiveml.pool import Badge

    probs, emb = values[:, :10], values[:, 10:]

    class Cached(SkactivemlClassifier):  # type: ignore[misc]
        def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "Cached":
            return self

        def predict_proba(self, X: Any, return_embeddings: bool = False) -> Any:
            rows = np.asarray(X)[:, 0].astype(int)
            return (probs[rows], emb[rows]) if return_embeddings else probs[rows]

        def predict(self, X: Any) -> np.ndarray:
            return np.asarray(self.predict_proba(X)).argmax(1)

    X = np.arange(values.shape[0], dtype=float)[:, None]
    y = np.full(values.shape[0], np.nan)
    clf = Cached(classes=np.arange(10), missing_label=np.nan)
    return np.asarray(Badge(clf_embedding_flag_name="return_embeddings", random_state=seed).query(X, y, clf, fit_clf=False, batch_size=budget))


#: strategy name -> (peer label, model output it reads, peer function, module imported before the clock);
#: "mc_probs" = our seeded MC-dropout probabilities, "a+b" = outputs a and b side by side
PEERS: dict[str, tuple[str, str, Any, str]] = {
    "entropy": ("baal Entropy", "probs", _peer_baal_entropy, "baal.active.heuristics"),
    "coreset": ("scikit-activeml CoreSet", "embeddings", _peer_skactiveml_coreset, "skactiveml.pool"),
    "bald": ("baal BALD", "mc_probs", _peer_baal_bald, "baal.active.heuristics"),
    "badge": ("scikit-activeml Badge", "probs+embeddings", _peer_skactiveml_badge, "skactiveml.pool"),
}


def peer_worker(args: argparse.Namespace) -> None:
    """Run one peer on a saved array (unlabeled rows only); prints a JSON line."""
    import importlib

    _, _, fn, module = PEERS[args.strategy]
    importlib.import_module(module)
    values = np.load(args.values)
    base = status_mib("VmHWM")
    t0 = time.perf_counter()
    fn(values, args.budget, 0)
    print(json.dumps({"seconds": time.perf_counter() - t0, "peak_mib": status_mib("VmHWM"), "before_mib": base}))


# --------------------------------------------------------------------------- #
# worker: one strategy
# --------------------------------------------------------------------------- #
def worker(args: argparse.Namespace) -> None:
    import torch

    sys.path.insert(0, str(ROOT / "src"))
    from activelearn.configs import TrainConfig
    from activelearn.experiment import make_loop, parse_label

    torch.manual_seed(0)
    train = TrainConfig(epochs=args.epochs, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.4, seed=0)
    strategy, params = parse_label(args.strategy)
    loop = make_loop("repeated_mnist", strategy, strategy_params=params, seed=0, train=train, cycles=2, budget=args.budget, device="cpu", progress=False)
    loop.prepare()  # attach the strategy's model extensions, as ActiveLoop.run() does
    loop.query(loop.initial, 0)
    t0 = time.perf_counter()
    loop.trainer.fit(loop.model, loop.pools, cycle=0)
    train_s = time.perf_counter() - t0
    before = status_mib("VmHWM")
    rss_before = status_mib("VmRSS")
    t0, c0 = time.perf_counter(), time.process_time()
    first = loop.strategy.select(loop.model, loop.pools, args.budget)
    total, total_cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = status_mib("VmHWM")
    # inference: recompute, timed on its own, exactly the outputs the selection left in the model's cache
    cached = loop.model.output_cache.computed(loop.pools)
    loop.model.output_cache.clear()
    t0 = time.perf_counter()
    for name, mask in cached.items():
        loop.model.outputs(loop.pools, np.flatnonzero(mask), [name])
    inference = time.perf_counter() - t0
    idx = getattr(first, "all_indices", first)
    out = {
        "strategy": args.strategy, "pool": loop.pools.n, "unlabeled": loop.pools.n_unlabeled, "budget": args.budget,
        "train_s": train_s, "total_s": total, "total_cpu_s": total_cpu, "inference_s": min(inference, total), "selection_s": max(0.0, total - inference),
        "peak_mib": peak, "rss_before_mib": rss_before, "hwm_before_mib": before, "n_selected": int(np.asarray(idx).size),
        "outputs": sorted(cached),
    }
    if args.strategy in PEERS and args.peer_values:
        name = PEERS[args.strategy][1]
        unl = loop.pools.unlabeled
        if name == "mc_probs":
            vals = loop.model.mc_outputs(loop.pools, unl, MC_SAMPLES, seed=0)["log_probs"].exp().cpu().numpy()
        else:
            outs = loop.model.outputs(loop.pools, unl, name.split("+"))
            vals = np.concatenate([outs[n].cpu().numpy().reshape(unl.size, -1) for n in name.split("+")], axis=1)
        np.save(args.peer_values, vals.reshape(vals.shape[0], -1).astype(np.float32))
    print(json.dumps(out))


# --------------------------------------------------------------------------- #
# driver
# --------------------------------------------------------------------------- #
def _run(cmd: list[str], timeout: float) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"rc {proc.returncode}"])[-1]
        return {"error": last[:160]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


#: working memory of the selection beyond the cached outputs, per strategy (the "one chunk" of issue 17)
CHUNKS = {
    "ibal": "chunk: IBAL scored 16,384 rows at a time (float64 copies of one block)",
    "ibal_d": "chunk: IBAL 16,384 rows at a time; latent distances min(65,536, 2^21 // |L|) rows x |L|",
    "entropy_d": "chunk: latent distances min(65,536, 2^21 // |L|) rows x |L|",
    "cluster_annotation": ("chunk: k-means' finiteness check 16,384 rows x 256 at a time (~28 MiB) and scikit-learn KMeans "
                           "blocks of 256 rows x k; the gathered unlabeled features (179,500 x 256 float32, 175 MiB) are "
                           "centred in place, not copied; with the default tol, scikit-learn's tolerance also allocates one "
                           "features-sized temporary (tol=0 row: without it); see the paragraph under the table"),
    "cdal": ("chunk: the labeled-set distances run 65,536 rows x 256 labeled centres = 2^24 float64 divergences (128 MiB) "
             "per block, about four such temporaries in its expression (~512 MiB, the bulk of the added memory), plus the "
             "probabilities and their logs in float64 (2 x 180,000 x 10 x 8 B = 27 MiB); the greedy steps then use "
             "65,536-row vectors; read from ops/symkl.py, not measured part by part"),
    "batchbald": ("chunk: max_elements = 2^24 float64 values (128 MiB) of M x rows x C per scoring block, overwritten in "
                  "place; candidates' K x C log-probabilities are the features"),
}


#: paragraphs printed under the table, per strategy (findings that do not fit a note)
BELOW = {
    "cluster_annotation": ("**cluster_annotation memory (issue 17).** Both rows: `rank=\"all\"` (the default: k-means into 500 clusters "
                           "of all 179,500 unlabeled samples, every cluster proposed), measured one after the other on a loaded machine "
                           "(load 10; wall seconds are mostly waiting, see the CPU column). Added by select: default `tol=1e-6` 593 MiB, "
                           "`tol=0` 395 MiB; the 198 MiB between them is scikit-learn's tolerance, `np.var(X, axis=0)`, which allocates "
                           "`X - mean` in full (175 MiB) before the iterations and is skipped when `tol=0`. With `tol=0` the selection adds "
                           "the model's cached embeddings of the pool (180,000 x 256 float32, 176 MiB, kept for later calls as for every "
                           "strategy that reads embeddings), the gathered unlabeled rows k-means clusters (175 MiB, centred in place; "
                           "scikit-learn takes one contiguous array) and 44 MiB for the rest: O(N) labels and norms, the finiteness check's "
                           "chunk (16,384 x 256, ~28 MiB) and scikit-learn's 256 x k distance blocks; that is the features + O(N) + one "
                           "chunk. The default stays `tol=1e-6` because the committed cluster-annotation results were made with it; "
                           "`tol=0` stops only at `n_iter` (30) iterations or strict convergence (the paper runs a fixed 40) and can "
                           "change the clusters. Small-scale fits (`OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/cluster_memory.py "
                           "--parts kmeans,kmeans_tol0,select,select_tol0 --chunk-size 2048`, synthetic float32 N x 256 in clusters of 75, "
                           "N = 10,000 / 20,000 / 40,000, one fresh subprocess each; rows `code: tol` in `results_cluster_memory.jsonl`), "
                           "added = a N + b extrapolated to 179,500: `kmeans` a = 0.977 MiB per 1,000 rows (175 MiB, all of it the "
                           "`np.var` temporary), `kmeans_tol0` 0.088 (19 MiB), `select` 1.975 (355 MiB), `select_tol0` 1.076 (198 MiB: the "
                           "gathered rows + 23); with the cached embeddings that predicts 531 and 374 MiB against the 593 and 395 measured. "
                           "History: before issue 17 the row (`rank=\"purity\"`, then the default) added 633 MiB, of which ~276 MiB were "
                           "k-means' whole-matrix NaN check (`torch.isfinite` on all rows, ~1.75x the features; now one chunk at a time) "
                           "and `rank=\"all\"` made k-means copy the gathered rows (`copy_x=True`; now `copy=False`); `code` before / after "
                           "rows of `results_cluster_memory.jsonl`, tests in tests/test_cluster_memory.py."),
}


def _table(rows: list[dict[str, Any]], header: str) -> str:
    last = max(rows, key=lambda r: r.get("when", ""))
    lines = [header, "", f"Command: `{last.get('command', '')}`", "", f"Machine: {last.get('machine', '')}", "",
             ("| strategy | inference (s) | selection (s) | total (s) | total CPU (s) | peak RSS (MiB) | added by select (MiB) | peer "
              "| peer selection (s) | peer peak added (MiB) | load before/after | measured | note |"),
             "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---|---|"]
    for r in sorted(rows, key=lambda r: r["strategy"]):
        if "error" in r:
            extra = f"; {r['extra']}" if r.get("extra") else ""
            lines.append(f"| {r['strategy']} | | | | | | | | | | | {r.get('when', '')} | error: {r['error']}{extra} |")
            continue
        p = r.get("peer", {})
        ps = f"{p['seconds']:.2f}" if "seconds" in p else ""
        pm = f"{p['peak_mib'] - p['before_mib']:.0f}" if "seconds" in p else ""
        note = [f"outputs: {', '.join(r.get('outputs', [])) or 'none'}"]
        if "error" in p:
            note.append(f"peer: {p['error']}")
        if r["strategy"].split(":")[0] in CHUNKS:
            note.append(CHUNKS[r["strategy"].split(":")[0]])
        if r.get("extra"):
            note.append(r["extra"])
        if r["strategy"].split(":")[0] in ("bald", "batchbald"):
            note.append(f"selection includes the {MC_SAMPLES} MC-dropout passes over the candidates (not cached, so inference shows 0); "
                        "the peer gets those probabilities precomputed")
        cpu = f"{r['total_cpu_s']:.2f}" if "total_cpu_s" in r else ""
        lines.append(
            f"| {r['strategy']} | {r['inference_s']:.2f} | {r['selection_s']:.2f} | {r['total_s']:.2f} | {cpu} | {r['peak_mib']:.0f} | "
            f"{r['peak_mib'] - r['hwm_before_mib']:.0f} | {p.get('name', '')} | {ps} | {pm} | "
            f"{r.get('load_before', float('nan')):.1f}/{r.get('load_after', float('nan')):.1f} | {r.get('when', '')} | {'; '.join(note)} |"
        )
    names = {r["strategy"].split(":")[0] for r in rows}
    lines += [f"\n{BELOW[n]}" for n in sorted(BELOW) if n in names]
    return "\n".join(lines) + "\n"


def _header(args: argparse.Namespace, path: Path) -> str:
    return (
        f"# Selection cost per strategy, Repeated MNIST (180,000 samples), b = {args.budget}\n\n"
        f"Written by `benchmarks/strategies.py` from `{path.name}` (re-run it to add strategies registered later; "
        "`--strategies` filters, `--redo` re-measures). Each row is one fresh subprocess: the RMNIST MLP "
        f"(784-256-256-10, the strategy's own extensions) trained {args.epochs} epochs on 500 seeded labels, then one "
        "selection of b samples from the 179,500 unlabeled. `inference`: recomputing the outputs that selection "
        "left in the model's cache (names in the note); `selection` = total - inference. `peak RSS`: VmHWM of the "
        "subprocess (Python + torch + the 180,000 x 784 float32 pool, 551 MiB, + the trained model); `added by "
        "select`: VmHWM after the selection minus before it, i.e. the cached outputs (O(N)) plus the strategy's "
        "working blocks. Peers run in their own subprocess on the same cached outputs (unlabeled rows), timed "
        "without their imports; BALD / BADGE peers (baal `BALD`, scikit-activeml `Badge`) plug into `PEERS` once "
        "those strategies are registered. Runs since 2026-12-01 17:30 UTC were made under `nice` with OMP_NUM_THREADS=1 "
        "on a 2-core machine shared with other jobs (load 13-17): wall seconds include waiting for a CPU; `total CPU` is the "
        "process CPU time of the call (empty for older rows). Compare ratios only within one run."
        )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strategies", default="*", help="comma-separated names or shell patterns (default: all registered)")
    ap.add_argument("--budget", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=5, help="training epochs of the MLP on the 500 initial labels")
    ap.add_argument("--jsonl", default=str(ROOT / "benchmarks" / "results_strategies_cpu.jsonl"))
    ap.add_argument("--md", default=str(ROOT / "benchmarks" / "results_strategies_cpu.md"))
    ap.add_argument("--redo", action="store_true", help="re-measure strategies already in --jsonl")
    ap.add_argument("--peer-python", default=None, help="interpreter with baal / scikit-activeml installed")
    ap.add_argument("--timeout", type=float, default=1200.0)
    ap.add_argument("--merge", default=None, help="add the rows of another --jsonl file (replacing same names), rewrite --md, run nothing")
    ap.add_argument("--_worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_peer", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--strategy", help=argparse.SUPPRESS)
    ap.add_argument("--peer-values", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--values", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker:
        worker(args)
        return
    if args._peer:
        peer_worker(args)
        return

    import fnmatch

    sys.path.insert(0, str(ROOT / "src"))
    import torch

    from activelearn.strategies import available

    pats = [p for p in args.strategies.split(",") if p]
    names = [n for n in available() if any(fnmatch.fnmatchcase(n, p) for p in pats)]
    names += [p for p in pats if ":" in p]  # variants with parameters, e.g. contrastive_distance:first_epochs=1
    path = Path(args.jsonl)
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    if args.merge:
        new = [json.loads(line) for line in Path(args.merge).read_text().splitlines() if line.strip()]
        names_new = {r["strategy"] for r in new}
        rows = [r for r in rows if r["strategy"] not in names_new] + new
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        Path(args.md).write_text(_table(rows, _header(args, path)))
        print(f"merged {sorted(names_new)} into {path}")
        return
    done = {r["strategy"] for r in rows}
    cmdline = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s), torch {torch.__version__}, "
               f"torch threads {torch.get_num_threads()}")
    for name in names:
        if name in done and not args.redo:
            print(f"{name}: already measured (use --redo)", flush=True)
            continue
        load0 = os.getloadavg()[0]
        vals = str(path.with_suffix(f".{name}.npy")) if name in PEERS and args.peer_python else None
        cmd = [sys.executable, __file__, "--_worker", "--strategy", name, "--budget", str(args.budget), "--epochs", str(args.epochs)]
        if vals:
            cmd += ["--peer-values", vals]
        res = _run(cmd, args.timeout)
        res.setdefault("strategy", name)
        if vals and "error" not in res and os.path.exists(vals):
            peer = _run([args.peer_python, __file__, "--_peer", "--strategy", name, "--values", vals, "--budget", str(args.budget)], args.timeout)
            peer["name"] = PEERS[name][0]
            res["peer"] = peer
            os.remove(vals)
        res.update({"load_before": load0, "load_after": os.getloadavg()[0], "command": cmdline, "machine": machine,
                    "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
        rows = [r for r in rows if r["strategy"] != name] + [res]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        Path(args.md).write_text(_table(rows, _header(args, path)))
        print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
