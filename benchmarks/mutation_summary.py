"""Turn a mutmut results listing into the small JSON committed beside docs/reliability.md (issue 13).

Input: the ``results.txt`` that ``benchmarks/mutation.sh`` writes (``mutmut results --all true``
without the "not checked" lines: one ``name: status`` per mutant).  Output: per function, the count
of each status, and the name of every mutant that was not killed (killed ones are only counted),
plus what the run was (revision, command, test selection).  ``examples/results_pages.py`` builds the
mutation tables of docs/reliability.md from these files; ``tests/test_results_pages.py`` checks
them.

``--base BEFORE.json`` makes an "after" file from a rerun of some of BEFORE's mutants: the rerun's
statuses replace BEFORE's for the names it lists, everything else is carried over (tests were only
added in between, the mutated source is byte-identical, so a mutant killed before stays killed).

Example::

    python benchmarks/mutation_summary.py /tmp/mut/ops/results.txt --rev c6628f9 \\
        --command "..." --selection-from /tmp/mut/ops/pyproject.toml --out docs/results/mutation/ops_before.json
"""

from __future__ import annotations

import argparse
import collections
import json
import re
from pathlib import Path
from typing import Any

KILLED = ("killed", "timeout")  # a timeout is a detected mutant (mutmut counts it so too)


def parse(path: Path) -> dict[str, str]:
    """``name -> status`` from a ``mutmut results --all true`` listing (blank and "not checked" lines skipped)."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name and status != "not checked":
            out[name] = status
    return out


def function_of(name: str) -> str:
    return name.split("__mutmut_")[0]


def summarise(statuses: dict[str, str]) -> dict[str, Any]:
    functions: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for name, status in statuses.items():
        functions[function_of(name)][status] += 1
    return {
        "functions": {f: dict(sorted(c.items())) for f, c in sorted(functions.items())},
        "not_killed": {n: s for n, s in sorted(statuses.items()) if s not in KILLED},
    }


def expand(summary: dict[str, Any]) -> dict[str, str]:
    """Back to ``name -> status`` for the not-killed names; killed ones as ``function__mutmut_#<status><i>`` placeholders."""
    out = dict(summary["not_killed"])
    for f, counts in summary["functions"].items():
        for status in KILLED:
            for i in range(counts.get(status, 0)):
                out[f"{f}__mutmut_#{status}{i}"] = status
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--rev", required=True, help="the revision whose tests ran")
    ap.add_argument("--command", required=True)
    ap.add_argument("--selection-from", type=Path, help="pyproject.toml whose [tool.mutmut] test selection the run used")
    ap.add_argument("--only", default=None, help="regex: keep only mutant names that match (e.g. '^activelearn\\.ops\\.')")
    ap.add_argument("--names", type=Path, default=None, help="keep only the mutants named in this file (one per line: a sample)")
    ap.add_argument("--base", type=Path, default=None, help="BEFORE.json: this results file is a rerun of some of its mutants")
    args = ap.parse_args(argv)
    statuses = parse(args.results)
    if args.only:
        statuses = {n: s for n, s in statuses.items() if re.search(args.only, n)}
    if args.names:
        wanted = set(args.names.read_text().split())
        missing = sorted(wanted - set(statuses))
        if missing:
            raise SystemExit(f"{len(missing)} named mutants have no result in {args.results}: {missing[:3]} ...")
        statuses = {n: s for n, s in statuses.items() if n in wanted}
    meta: dict[str, Any] = {"rev": args.rev, "command": args.command}
    if args.selection_from:
        text = args.selection_from.read_text()
        sel = re.search(r"pytest_add_cli_args_test_selection = \[(.*?)\]", text, re.S)
        meta["test_selection"] = re.findall(r'"([^"]+)"', sel.group(1)) if sel else []
    if args.base:
        base = json.loads(args.base.read_text())
        merged = expand(base)
        rerun = set(statuses)
        missing = sorted(rerun - set(merged))
        if missing:
            raise SystemExit(f"{len(missing)} rerun mutants are not in {args.base}: {missing[:3]} ...")
        merged.update(statuses)
        # placeholders of killed mutants stand for themselves; re-key the summary from the merged names
        summary = summarise(merged)
        meta["base"] = args.base.name
        meta["rerun"] = len(rerun)
    else:
        summary = summarise(statuses)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**meta, **summary}, indent=1, ensure_ascii=False) + "\n")
    n = sum(sum(c.values()) for c in summary["functions"].values())
    k = sum(c.get(s, 0) for c in summary["functions"].values() for s in KILLED)
    print(f"{args.out}: {k} / {n} killed ({100 * k / max(n, 1):.1f} %), {len(summary['not_killed'])} not killed")


if __name__ == "__main__":
    main()


# ---------------------------------------------------------------- tables of docs/reliability.md
def module_of(name: str) -> str:
    """``activelearn.ops.kcenter.x_f__mutmut_3`` -> ``ops.kcenter``."""
    return ".".join(name.split(".")[1:3])


def _counts(summary: dict[str, Any]) -> dict[str, collections.Counter[str]]:
    """Per module: ``killed`` and ``total`` mutants of a summary."""
    out: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for f, counts in summary["functions"].items():
        for status, n in counts.items():
            out[module_of(f)]["total"] += n
            out[module_of(f)]["killed"] += n if status in KILLED else 0
    return out


def _harmless(folder: Path) -> list[dict[str, Any]]:
    """``harmless.json``: groups ``{"mutants": [full names], "note": "what it changes: why it cannot change a result"}``."""
    return json.loads((folder / "harmless.json").read_text())


#: (before, after) summaries per run of docs/results/mutation: the seeded sample and the whole of ops/jenks.py
RUNS = (("before.json", "after.json"), ("jenks_before.json", "jenks_after.json"))


def sample_table(folder: Path) -> str:
    """Killed / tested per module before and after, and what became of the rest (docs/reliability.md)."""
    population = json.loads((folder / "sample.json").read_text())["population"]
    harmless = {n for g in _harmless(folder) for n in g["mutants"]}
    rows = ["| module | mutants | tested | killed before | killed after | left: harmless | left: survived | left: no tests |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    tot: collections.Counter[str] = collections.Counter()
    for before_name, after_name in RUNS:
        before = json.loads((folder / before_name).read_text())
        after = json.loads((folder / after_name).read_text())
        b, a = _counts(before), _counts(after)
        left: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for name, status in after["not_killed"].items():
            left[module_of(name)]["harmless" if name in harmless else status] += 1
        for mod in sorted(b):
            n = b[mod]["total"]
            if a[mod]["total"] != n:
                raise ValueError(f"{mod}: {n} mutants before, {a[mod]['total']} after")
            row = {"pop": population.get(mod, n), "n": n, "kb": b[mod]["killed"], "ka": a[mod]["killed"],
                   "h": left[mod]["harmless"], "s": left[mod]["survived"], "nt": left[mod]["no tests"]}
            tot.update(row)
            rows.append(f"| {mod} | {row['pop']:,} | {n} | {row['kb']} ({100 * row['kb'] / n:.0f} %) | {row['ka']} ({100 * row['ka'] / n:.0f} %) "
                        f"| {row['h']} | {row['s']} | {row['nt']} |")
    n = tot["n"]
    rows.append(f"| **all** | {tot['pop']:,} | {n} | {tot['kb']} ({100 * tot['kb'] / n:.0f} %) | {tot['ka']} ({100 * tot['ka'] / n:.0f} %) "
                f"| {tot['h']} | {tot['s']} | {tot['nt']} |")
    return "\n".join(rows)


def harmless_table(folder: Path) -> str:
    """The counted mutants left after the rerun that were judged harmless, grouped by reason (docs/reliability.md)."""
    left = {n for _, after in RUNS for n in json.loads((folder / after).read_text())["not_killed"]}
    rows = ["| mutants | what it changes and why that cannot change a result |", "|---|---|"]
    for g in _harmless(folder):
        counted = [n for n in g["mutants"] if n in left]  # the helpers also read mutants outside the sample
        if not counted:
            continue
        names = ", ".join(f"`{n.removeprefix('activelearn.')}`" for n in counted)
        note = g["note"].replace("|", "\\|").removeprefix("harmless").lstrip(" :")
        rows.append(f"| {names} | {note} |")
    return "\n".join(rows)


def open_table(folder: Path) -> str:
    """Counted mutants left after the rerun and not judged harmless, with the reader's note (``open.json``)."""
    harmless = {n for g in _harmless(folder) for n in g["mutants"]}
    notes = {n: g["note"] for g in json.loads((folder / "open.json").read_text()) for n in g["mutants"]}
    rows = ["| mutant | status after | note |", "|---|---|---|"]
    for _, after in RUNS:
        for name, status in sorted(json.loads((folder / after).read_text())["not_killed"].items()):
            if name not in harmless:
                note = notes.get(name, "not read yet").replace("|", "\\|")
                rows.append(f"| `{name.removeprefix('activelearn.')}` | {status} | {note} |")
    return "\n".join(rows)
