"""Regenerate the generated tables of ``docs/results/*.md`` from the committed per-run data.

A generated table sits in its page between ``<!-- table:ID -->`` and
``<!-- /table:ID -->``; :data:`TABLES` says which function builds it from which
committed files (``history.json`` per run, copied from a run's ``--out`` folder
without its checkpoint).  ``tests/test_results_pages.py`` fails when a page and
its data disagree, so a number in a page changes only with its data.

Usage::

    python examples/results_pages.py            # rewrite every generated table
    python examples/results_pages.py --check    # exit 1 if a page differs from its data
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from activelearn.history import History, comparison_table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def load_runs(folder: Path, names: list[str]) -> dict[str, list[History]]:
    """``folder/<name>/seed<k>/history.json`` for every name, seeds in numeric order."""
    runs: dict[str, list[History]] = {}
    for name in names:
        files = sorted((folder / name).glob("seed*/history.json"), key=lambda p: int(p.parent.name[4:]))
        if files:
            runs[name] = [History.load_json(f) for f in files]
    return runs


def rmnist_cdal() -> str:
    """DACS paper Table 2 rows beside our CDAL runs (docs/results/rmnist/cdal)."""
    from rmnist import PAPER  # examples/rmnist.py

    runs = load_runs(RESULTS / "rmnist", ["cdal"])
    if not runs:
        raise FileNotFoundError(f"no committed runs under {RESULTS / 'rmnist' / 'cdal'}")
    keep = ("paper: CDAL", "paper: Core-set", "paper: DACS")
    return comparison_table(runs, reference={k: PAPER[k] for k in keep})


def rmnist_cdal_seeds() -> str:
    """Each CDAL trial's accuracy per cycle (docs/results/rmnist/cdal/seed<k>)."""
    runs = load_runs(RESULTS / "rmnist", ["cdal"])
    return comparison_table({f"cdal, seed {h.meta['seed']}": [h] for h in runs.get("cdal", [])})


def rmnist_rerun() -> str:
    """Random, Core-set, DACS and CDAL from the committed re-run histories, with the paper's rows."""
    from rmnist import PAPER  # examples/rmnist.py

    runs = load_runs(RESULTS / "rmnist", ["random", "coreset", "dacs", "cdal"])
    keep = ("paper: Random", "paper: Core-set", "paper: DACS", "paper: CDAL")
    return comparison_table(runs, reference={k: PAPER[k] for k in keep})


#: every strategy of the RMNIST main table -> its folder under docs/results/rmnist (no ':' in paths)
RMNIST_MAIN = {n: n for n in ("random", "entropy", "coreset", "dacs", "dacs+entropy", "learning_loss", "dacs+learning_loss", "ncenet", "dacs+ncenet")}
RMNIST_MAIN["dacs:cross_group=True"] = "dacs_cross_group=True"


def rmnist_main_rows() -> str:
    """The main table's strategy rows (mean ± std over the 3 committed trials of each strategy)."""
    folders = load_runs(RESULTS / "rmnist", list(RMNIST_MAIN.values()))
    missing = [n for n, f in RMNIST_MAIN.items() if f not in folders]
    if missing:
        raise FileNotFoundError(f"no committed runs for {missing} under {RESULTS / 'rmnist'}")
    return comparison_table({n: folders[f] for n, f in RMNIST_MAIN.items()})


def rmnist_paired() -> str:
    """Per-seed differences (points of accuracy) DACS - CDAL and DACS - Core-set, then their mean."""
    runs = load_runs(RESULTS / "rmnist", ["coreset", "dacs", "cdal"])
    dacs = {h.meta["seed"]: h for h in runs["dacs"]}
    first = runs["dacs"][0]
    head = "| difference | " + " | ".join(str(r.n_labeled) for r in first.records) + " |"
    rows = [head, "|---|" + "---:|" * len(first)]
    for other in ("cdal", "coreset"):
        diffs = []
        for h in runs[other]:
            d = (dacs[h.meta["seed"]].metric() - h.metric()) * 100
            diffs.append(d)
            rows.append(f"| dacs - {other}, seed {h.meta['seed']} | " + " | ".join(f"{round(v, 1) + 0.0:+.1f}" for v in d) + " |")
        mean = sum(diffs) / len(diffs)
        rows.append(f"| dacs - {other}, mean | " + " | ".join(f"{round(v, 2) + 0.0:+.2f}" for v in mean) + " |")
    return "\n".join(rows)


IBAL_NAMES = ["random", "entropy", "entropy_d", "d_only", "ibal", "ibal_d"]
IBAL_PAIRS = [("ibal_d", "random"), ("ibal_d", "entropy"), ("ibal_d", "entropy_d"), ("ibal_d", "d_only"),
              ("ibal_d", "ibal"), ("ibal", "random"), ("entropy_d", "entropy"), ("d_only", "random")]


def _ibal_runs() -> dict[str, list[History]]:
    runs = load_runs(RESULTS / "ibal_synthetic", IBAL_NAMES)
    if not runs:
        raise FileNotFoundError(f"no committed runs under {RESULTS / 'ibal_synthetic'}")
    return runs


def ibal_accuracy() -> str:
    """Test accuracy per labeled-set size, mean ± std over seeds (docs/results/ibal_synthetic)."""
    return comparison_table(_ibal_runs(), metric="accuracy")


def ibal_balanced() -> str:
    """Balanced accuracy (mean per-class recall) per labeled-set size, mean ± std over seeds."""
    return comparison_table(_ibal_runs(), metric="balanced_accuracy")


def ibal_paired() -> str:
    """Paired per-seed differences (points) of balanced accuracy: mean over cycles 1..end, and last cycle."""
    runs = {n: {h.meta["seed"]: h for h in hs} for n, hs in _ibal_runs().items()}
    seeds = sorted(runs["random"])
    head = "| difference | measure | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | std | seeds > 0 |"
    rows = [head, "|---|---|" + "---:|" * (len(seeds) + 3)]
    for a, b in IBAL_PAIRS:
        for label, pick in (("mean over cycles", lambda m: float(np.mean(m[1:]))), ("last cycle", lambda m: float(m[-1]))):
            d = np.array([100 * (pick(runs[a][s].metric("balanced_accuracy")) - pick(runs[b][s].metric("balanced_accuracy"))) for s in seeds])
            cells = [f"{round(v, 1) + 0.0:+.1f}" for v in d]
            rows.append(f"| {a} - {b} | {label} | " + " | ".join(cells)
                        + f" | {round(d.mean(), 2) + 0.0:+.2f} | {d.std():.2f} | {int((d > 0).sum())} of {len(d)} |")
    return "\n".join(rows)


def ibal_picks() -> str:
    """What each strategy picked: labels per class at the end, share of minority picks, confidence of picks vs pool."""
    runs = _ibal_runs()
    rows = ["| strategy | labeled class 0 / 1 / 2 at the end (mean) | picks from class 2 (minority), % | mean max-prob of picks | of the unlabeled pool |",
            "|---|---:|---:|---:|---:|"]
    for name, hs in runs.items():
        last = [np.mean([h.records[-1].extra[f"labeled_class{c}"] for h in hs]) for c in range(3)]
        picks = np.array([[np.nansum(h.column(f"pick_class{c}")) for c in range(3)] for h in hs]).sum(0)
        conf = np.nanmean([np.nanmean(h.column("pick_conf")) for h in hs])
        pool = np.nanmean([np.nanmean(h.column("pool_conf")) for h in hs])
        rows.append(f"| {name} | {last[0]:.1f} / {last[1]:.1f} / {last[2]:.1f} | {100 * picks[2] / picks.sum():.1f} | {conf:.3f} | {pool:.3f} |")
    return "\n".join(rows)


REGRESSION_STRATEGIES = ["random", "coreset", "dacs", "learning_loss", "dacs+learning_loss"]


def regression_mse() -> str:
    """Diabetes test MSE by labeled-set size, mean ± sample std over seeds, and the AUBC of MSE (docs/results/regression)."""
    import numpy as np

    from activelearn.metrics import aubc

    runs = load_runs(RESULTS / "regression", REGRESSION_STRATEGIES)
    if not runs:
        raise FileNotFoundError(f"no committed runs under {RESULTS / 'regression'}")
    first = next(iter(runs.values()))[0]
    sizes = [str(r.n_labeled) for r in first.records]
    rows = ["| strategy | " + " | ".join(sizes) + " | AUBC (lower is better) | seeds |", "|---|" + "---:|" * (len(sizes) + 1) + "---|"]
    for name, hs in runs.items():
        vals = np.array([h.metric("mse") for h in hs])
        areas = np.array([aubc(h.column("n_labeled"), h.metric("mse")) for h in hs])
        cells = [f"{m:.3f} ± {s:.3f}" for m, s in zip(vals.mean(0), vals.std(0, ddof=1))]
        cells.append(f"{areas.mean():.3f} ± {areas.std(ddof=1):.3f}")
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {', '.join(str(h.meta['seed']) for h in hs)} |")
    return "\n".join(rows)


CLUSTER_NAMES = ["random", "uncertain-only", "cluster-only", "uncertain+cluster", "cluster+uncertain"]


def _cluster_runs(folder: str = "cluster_annotation") -> dict[str, list[History]]:
    runs = load_runs(RESULTS / folder, CLUSTER_NAMES)
    if not runs:
        raise FileNotFoundError(f"no committed runs under {RESULTS / folder}")
    return runs


def _seeds(hs: list[History]) -> str:
    return ", ".join(str(h.meta["seed"]) for h in hs)


def cluster_within_1pt(folder: str = "cluster_annotation") -> str:
    """Interactions to come within 1 point of full supervision, per seed, with the final accuracy (docs/results/cluster_annotation)."""
    rows = ["| scenario | seeds | full supervision, % (per seed) | interactions to >= full - 1 pt (per seed) | share of the pool | "
            "accuracy at the last iteration, % (mean ± std) | labeled samples at the end (mean) |",
            "|---|---|---|---|---|---:|---:|"]
    for name, hs in _cluster_runs(folder).items():
        full = [h.meta["full_supervision"] for h in hs]
        hits = []
        for h, f in zip(hs, full):
            ok = np.flatnonzero(h.metric("accuracy") >= f - 0.01)
            hits.append(int(h.column("interactions")[ok[0]]) if ok.size else None)
        pool = int(hs[0].meta.get("pool_size", 0)) or None
        cells = ", ".join("not within " + f"{int(h.column('interactions')[-1])}" if x is None else str(x) for x, h in zip(hits, hs))
        share = ", ".join("-" if x is None or pool is None else f"{100 * x / pool:.0f}%" for x in hits)
        last = np.array([100 * h.metric("accuracy")[-1] for h in hs])
        rows.append(f"| {name} | {_seeds(hs)} | {', '.join(f'{100 * f:.2f}' for f in full)} | {cells} | {share} | "
                    f"{last.mean():.2f} ± {last.std():.2f} | {np.mean([h.column('n_labeled')[-1] for h in hs]):.0f} |")
    return "\n".join(rows)


def cluster_accuracy(folder: str = "cluster_annotation") -> str:
    """Test accuracy (%) per iteration against interactions, mean ± std over seeds."""
    runs = _cluster_runs(folder)
    inter = np.unique(np.concatenate([h.column("interactions") for hs in runs.values() for h in hs]))
    rows = ["| scenario (seeds) | " + " | ".join(f"{int(i)}" for i in inter) + " |", "|---|" + "---:|" * len(inter)]
    for name, hs in runs.items():
        cells = []
        for x in inter:  # the first training after x interactions (an exhausted pool retrains without new ones)
            acc = 100 * np.array([h.metric("accuracy")[np.flatnonzero(h.column("interactions") == x)[0]]
                                  for h in hs if (h.column("interactions") == x).any()])
            cells.append("-" if acc.size == 0 else f"{acc.mean():.1f}" if len(hs) == 1 else f"{acc.mean():.1f} ± {acc.std():.1f}")
        rows.append(f"| {name} ({len(hs)}) | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _nan_mean_cells(values: np.ndarray) -> list[str]:
    """Per column the mean in percent over the rows that have a value, "-" where none has."""
    return ["-" if np.isnan(c).all() else f"{100 * np.nanmean(c):.1f}" for c in values.T]


def cluster_fig3() -> str:
    """The paper's Fig. 3: cluster-labeled samples in each iteration's training set and their true accuracy (mean over seeds)."""
    runs = {k: v for k, v in _cluster_runs().items() if "cluster" in k}
    inter = next(iter(runs.values()))[0].column("interactions")
    rows = ["| scenario | measure | " + " | ".join(f"{int(i)}" for i in inter) + " |", "|---|---|" + "---:|" * len(inter)]
    for name, hs in runs.items():
        count = np.mean([h.column("train_cluster_labeled") for h in hs], axis=0)
        acc_cells = _nan_mean_cells(np.array([h.column("train_cluster_label_accuracy") for h in hs]))
        accepted = np.mean([h.column("clusters_accepted") for h in hs], axis=0)
        declined = np.mean([h.column("clusters_declined") for h in hs], axis=0)
        ad = ["-" if np.isnan(a) else f"{a:.0f} / {d:.0f}" for a, d in zip(accepted, declined)]
        rows.append(f"| {name} | cluster-labeled samples trained on | " + " | ".join(f"{c:.0f}" for c in count) + " |")
        rows.append(f"| {name} | their true accuracy, % | " + " | ".join(acc_cells) + " |")
        rows.append(f"| {name} | clusters accepted / declined in the next query | " + " | ".join(ad) + " |")
    return "\n".join(rows)


def mixmnist_generator() -> str:
    """Ink histograms of real and generated digits (docs/results/mixmnist/generator.json)."""
    import json

    data = json.loads((RESULTS / "mixmnist" / "generator.json").read_text())
    rows = ["| images | count | faint 1-63 | mid-gray 64-191 | dark 192-255 | inked pixels per image |", "|---|---:|---:|---:|---:|---:|"]
    for key, label in (("mnist_train", "MNIST train"), ("ambiguous_ink", "ambiguous, calibrated (default)"), ("ambiguous_none", "ambiguous, uncalibrated (recipe v1)")):
        d = data[key]
        bands = " | ".join(f"{100 * v:.1f} %" for v in d["bands"])
        rows.append(f"| {label} | {d['images']:,} | {bands} | {d['inked_per_image']:.1f} ± {d['inked_per_image_sd']:.1f} |")
    return "\n".join(rows)


def _mx():  # examples/mixmnist.py, imported when a MixMNIST table is built
    import mixmnist

    return mixmnist


def _mut():  # benchmarks/mutation_summary.py, imported when a mutation table is built
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import mutation_summary

    return mutation_summary


#: (page relative to docs/results, table id) -> builder
TABLES: dict[tuple[str, str], Callable[[], str]] = {
    ("rmnist.md", "rmnist-cdal"): rmnist_cdal,
    ("rmnist.md", "rmnist-cdal-seeds"): rmnist_cdal_seeds,
    ("rmnist.md", "rmnist-rerun"): rmnist_rerun,
    ("rmnist.md", "rmnist-paired"): rmnist_paired,
    ("ibal_synthetic.md", "ibal-accuracy"): ibal_accuracy,
    ("ibal_synthetic.md", "ibal-balanced"): ibal_balanced,
    ("ibal_synthetic.md", "ibal-paired"): ibal_paired,
    ("ibal_synthetic.md", "ibal-picks"): ibal_picks,
    ("regression.md", "regression-mse"): regression_mse,
    ("cluster_annotation.md", "cluster-within-1pt"): cluster_within_1pt,
    ("cluster_annotation.md", "cluster-accuracy"): cluster_accuracy,
    ("cluster_annotation.md", "cluster-fig3"): cluster_fig3,
    ("cluster_annotation.md", "cluster-long-within-1pt"): lambda: cluster_within_1pt("cluster_annotation_long"),
    ("cluster_annotation.md", "cluster-long-accuracy"): lambda: cluster_accuracy("cluster_annotation_long"),
    ("mixmnist.md", "mixmnist-generator"): mixmnist_generator,
    ("mixmnist.md", "mixmnist-paper"): lambda: _mx().cost_table(RESULTS / "mixmnist", "paper"),
    ("mixmnist.md", "mixmnist-paper-stages"): lambda: _mx().stage_table(RESULTS / "mixmnist", "paper"),
    ("mixmnist.md", "mixmnist-equal"): lambda: _mx().cost_table(RESULTS / "mixmnist", "equal"),
    ("mixmnist.md", "mixmnist-equal-stages"): lambda: _mx().stage_table(RESULTS / "mixmnist", "equal"),
    ("mixmnist.md", "mixmnist-seeds"): lambda: _mx().seed_table(RESULTS / "mixmnist"),
    ("mixmnist.md", "mixmnist-scale"): lambda: _mx().scale_table(RESULTS / "mixmnist_scale"),
    ("mixmnist.md", "mixmnist-epochs100"): lambda: _mx().seed_table(RESULTS / "mixmnist_epochs100"),
    ("mixmnist.md", "mixmnist-60k"): lambda: _mx().cost_table(RESULTS / "mixmnist_60k", "paper"),
    ("../reliability.md", "mutation-sample"): lambda: _mut().sample_table(RESULTS / "mutation"),
    ("../reliability.md", "mutation-harmless"): lambda: _mut().harmless_table(RESULTS / "mutation"),
    ("../reliability.md", "mutation-open"): lambda: _mut().open_table(RESULTS / "mutation"),
}


def _pattern(table_id: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- table:{re.escape(table_id)} -->\n)(.*?)\n?(<!-- /table:{re.escape(table_id)} -->)", re.S)


def page_table(page: str, table_id: str) -> str:
    """The table text currently in the page (raises if the markers are missing)."""
    text = (RESULTS / page).read_text()
    m = _pattern(table_id).search(text)
    if m is None:
        raise ValueError(f"{page} has no '<!-- table:{table_id} -->' ... '<!-- /table:{table_id} -->' block")
    return m.group(2)


def write_table(page: str, table_id: str, table: str) -> bool:
    """Replace the page's block by ``table``; True when the page changed."""
    path = RESULTS / page
    text = path.read_text()
    page_table(page, table_id)  # check the markers first
    new = _pattern(table_id).sub(lambda m: m.group(1) + table + "\n" + m.group(3), text)
    if new != text:
        path.write_text(new)
    return new != text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="only compare; exit 1 when a page differs from its data")
    args = p.parse_args(argv)
    stale = []
    for (page, table_id), build in TABLES.items():
        table = build()
        if args.check:
            if page_table(page, table_id) != table:
                stale.append(f"{page}#{table_id}")
        elif write_table(page, table_id, table):
            print(f"rewrote {page}#{table_id}")
    if stale:
        print("pages that differ from their data: " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
