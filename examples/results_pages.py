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


#: (page relative to docs/results, table id) -> builder
TABLES: dict[tuple[str, str], Callable[[], str]] = {
    ("rmnist.md", "rmnist-cdal"): rmnist_cdal,
    ("rmnist.md", "rmnist-cdal-seeds"): rmnist_cdal_seeds,
    ("rmnist.md", "rmnist-rerun"): rmnist_rerun,
    ("rmnist.md", "rmnist-paired"): rmnist_paired,
    ("regression.md", "regression-mse"): regression_mse,
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
