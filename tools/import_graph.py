"""Import graph of activelearn, function-level imports included, and its cycles.

Usage: ``python tools/import_graph.py [--edges]``.  Every ``import`` / ``from ... import``
anywhere in a module (top level, inside functions, under ``if TYPE_CHECKING``) is an
edge, tagged ``top``, ``func`` or ``typing``.  Prints each strongly connected
component with more than one module and one shortest cycle through each edge of it.
"""

from __future__ import annotations

import ast
import itertools
import sys
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src"
PKG = "activelearn"


def modules() -> dict[str, Path]:
    out = {}
    for p in sorted((ROOT / PKG).rglob("*.py")):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _scan(name: str, path: Path, mods: dict[str, Path], found: dict[tuple[str, str], set[str]]) -> None:
    """Add the edges of module ``name`` (file ``path``) to ``found``."""
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]

    def add(target: str, kind: str) -> None:
        while target and target not in mods:  # `from pkg.mod import name`: the module part
            target = target.rpartition(".")[0]
        if target and target != name:
            found.setdefault((name, target), set()).add(kind)

    def visit(node: ast.AST, kind: str) -> None:
        for child in ast.iter_child_nodes(node):
            k = "func" if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and kind == "top" else kind
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.body:
                    visit_one(sub, "typing")
                for sub in child.orelse:
                    visit_one(sub, k)
                continue
            visit_one(child, k)

    def visit_one(child: ast.AST, k: str) -> None:
        if isinstance(child, ast.Import):
            for a in child.names:
                if a.name.split(".")[0] == PKG:
                    add(a.name, k)
        elif isinstance(child, ast.ImportFrom):
            if child.level:
                anchor = base[: len(base) - (child.level - 1)]
                mod = ".".join(anchor + ([child.module] if child.module else []))
            else:
                mod = child.module or ""
            if mod.split(".")[0] == PKG:
                for a in child.names:
                    full = f"{mod}.{a.name}"
                    add(full if full in mods else mod, k)
        visit(child, k)

    visit(ast.parse(path.read_text()), "top")


def edges(mods: dict[str, Path]) -> dict[tuple[str, str], set[str]]:
    """``(importer, imported) -> kinds`` for every import between the package's modules."""
    found: dict[tuple[str, str], set[str]] = {}
    for name, path in mods.items():
        _scan(name, path, mods, found)
    return found


def sccs(nodes: list[str], adj: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in adj.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in nodes:
        if v not in index:
            strong(v)
    return [c for c in out if len(c) > 1]


def shortest_path(adj: dict[str, set[str]], a: str, b: str, allowed: set[str]) -> list[str] | None:
    prev = {a: a}
    q = deque([a])
    while q:
        v = q.popleft()
        if v == b:
            path = [b]
            while path[-1] != a:
                path.append(prev[path[-1]])
            return path[::-1]
        for w in sorted(adj.get(v, ())):
            if w in allowed and w not in prev:
                prev[w] = v
                q.append(w)
    return None


def main() -> None:
    mods = modules()
    found = edges(mods)
    if "--edges" in sys.argv:
        for (a, b), kinds in sorted(found.items()):
            print(f"{a} -> {b} [{','.join(sorted(kinds))}]")
        return
    for label, keep in (("all imports (top, func, typing)", {"top", "func", "typing"}), ("runtime imports (top, func)", {"top", "func"}), ("top-level imports only", {"top"})):
        adj: dict[str, set[str]] = {}
        for (a, b), kinds in found.items():
            if kinds & keep:
                adj.setdefault(a, set()).add(b)
        comps = sccs(sorted(mods), adj)
        print(f"== {label}: {len(comps)} cycle group(s)")
        for comp in comps:
            print("  group:", ", ".join(m.removeprefix(PKG + ".") for m in comp))
            members = set(comp)
            seen = set()
            for a in comp:
                for b in sorted(adj.get(a, ())):
                    if b in members:
                        back = shortest_path(adj, b, a, members)
                        if back:
                            cyc = tuple([a, *back])
                            key = frozenset(itertools.pairwise(cyc))
                            if key not in seen:
                                seen.add(key)
                                tags = [",".join(sorted(found[(x, y)] & keep)) for x, y in itertools.pairwise(cyc)]
                                print("    " + " ".join(f"{x.removeprefix(PKG + '.')} -[{t}]->" for x, t in zip(cyc, tags)) + " " + cyc[-1].removeprefix(PKG + "."))


if __name__ == "__main__":
    main()
