"""Pages of the documentation site built from the code (an mkdocs hook, see mkdocs.yml).

At every ``mkdocs build`` this hook adds, without writing them to ``docs/``:

* ``strategies/<name>.md`` for every registered strategy
  (``activelearn.strategies.available()``): the class docstring's first line,
  the paper, what it needs (``requires``, the model extensions its default
  instance attaches, MC dropout, and the words of ``tools/strategy_meta.py``),
  the constructor's parameters with their defaults (descriptions from the
  numpydoc ``Parameters`` section), and our reproduction with links to
  ``docs/results/`` -- or "no reproduction yet";
* ``strategies/index.md``, a table of them;
* ``api/<module>.md`` for every public module of ``src/activelearn``
  (mkdocstrings renders the docstrings);

and puts them into the navigation under "Strategies" and "API reference"; the
"Results" section lists every ``docs/results/*.md``, and a ``docs/*.md`` page
missing from the navigation joins "Guides".
``python tools/docs_hooks.py OUT`` writes the same pages to ``OUT`` to read
them without mkdocs.  ``tests/test_docs_site.py`` checks that every registered
strategy gets a page.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PKG_DIR = ROOT / "src" / "activelearn"
#: subpackages documented as one API page each (package docstring, then every public submodule)
SUBPACKAGES = ("strategies", "extensions", "ops", "datasets")


def _load_meta() -> dict[str, dict[str, Any]]:
    spec = importlib.util.spec_from_file_location("_strategy_meta", Path(__file__).with_name("strategy_meta.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.STRATEGY_META


# ------------------------------------------------------------------ strategies
def _param_docs(cls: type) -> dict[str, str]:
    """Parameter name -> description from the class docstring's numpydoc ``Parameters`` section."""
    try:
        import griffe
    except ImportError:  # the docs extra is not installed: tables without descriptions
        return {}
    out: dict[str, str] = {}
    for section in griffe.Docstring(inspect.getdoc(cls) or "").parse("numpy", warn_unknown_params=False, warn_missing_types=False):
        if section.kind.value == "parameters":
            for p in section.value:
                # "ae_epochs, ae_batch_size, ae_lr : ..." documents several names at once
                for name in p.name.split(","):
                    out[name.strip()] = " ".join(p.description.split())
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _parameters(cls: type) -> list[str]:
    docs = _param_docs(cls)
    rows = ["| parameter | default | description |", "|---|---|---|"]
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = "required" if p.default is p.empty else f"`{p.default!r}`"
        rows.append(f"| `{p.name}` | {default} | {_cell(docs.get(p.name, ''))} |")
    return rows if len(rows) > 2 else ["No parameters."]


def _extensions(cls: type) -> list[str]:
    try:
        return [type(e).__name__ for e in cls().model_extensions()]
    except Exception:  # noqa: BLE001 - a class without a default instance declares none here
        return []


def _first_line(cls: type) -> str:
    doc = (inspect.getdoc(cls) or "").strip().splitlines()
    return doc[0].strip() if doc else cls.__name__


def _api_ref(cls: type) -> str:
    """Markdown link to the class on its API page (an mkdocs-autorefs cross-reference)."""
    return f"[`{cls.__module__}.{cls.__qualname__}`][{cls.__module__}.{cls.__qualname__}]"


def strategy_page(name: str, meta: dict[str, dict[str, Any]] | None = None) -> str:
    """The Markdown page of one registered strategy."""
    from activelearn import strategies

    meta = _load_meta() if meta is None else meta
    if name not in meta:
        raise KeyError(f"strategy {name!r} is registered but tools/strategy_meta.py has no entry for it; add its paper, needs and results there")
    entry, cls = meta[name], strategies.get_class(name)
    needs = [f"- Model outputs (`requires`): {', '.join(f'`{r}`' for r in sorted(cls.requires)) or 'none'}."]
    exts = _extensions(cls)
    needs.append(f"- Model extensions it attaches: {', '.join(f'`{e}`' for e in exts) or 'none'}.")
    if getattr(cls, "needs_dropout", False):
        needs.append("- MC dropout: the backbone must have dropout layers.")
    if entry["needs"]:
        needs.append(f"- Also: {entry['needs']}.")
    results = [f"- [{_title(ROOT / 'docs' / page)}](../{page}): {text}" for page, text in entry["results"]] or ["No reproduction yet."]
    lines = [
        f"# `{name}`",
        "",
        _first_line(cls),
        "",
        f"Class: {_api_ref(cls)}.",
        "",
        "## Paper",
        "",
        entry["paper"] or "None: a baseline without one paper.",
        "",
        "## What it needs",
        "",
        *needs,
        "",
        "## Parameters",
        "",
        "Keyword arguments of the constructor, with their defaults:",
        "",
        *_parameters(cls),
        "",
        "## Our reproduction",
        "",
        *results,
        "",
        "## Use",
        "",
        "```python",
        "import activelearn as al",
        "",
        f'strategy = al.strategies.get("{name}", seed=0)',
        "```",
        "",
        f"Command line, on the bundled digits (`activelearn list` shows the datasets): `activelearn run --dataset digits --strategy {name} --out results/{name}`.",
        "",
    ]
    return "\n".join(lines)


def strategy_pages() -> dict[str, str]:
    """``strategies/<name>.md`` -> page, for every registered strategy, and ``strategies/index.md``."""
    from activelearn import strategies

    meta = _load_meta()
    names = builtin_strategies()
    pages = {f"strategies/{n}.md": strategy_page(n, meta) for n in names}
    rows = ["| strategy | what it does | needs | reproduced |", "|---|---|---|---|"]
    for n in names:
        cls = strategies.get_class(n)
        reqs = ", ".join(sorted(cls.requires)) or "-"
        done = ", ".join(f"[{Path(p).stem}](../{p})" for p, _ in meta[n]["results"]) or "not yet"
        rows.append(f"| [`{n}`]({n}.md) | {_cell(_first_line(cls))} | {reqs} | {done} |")
    pages["strategies/index.md"] = "\n".join([
        "# Strategies",
        "",
        "One page per registered strategy (`activelearn.strategies.available()`), built from the",
        "registry and the class docstrings at every docs build. Combine two with `a+b`",
        "(expand and squeeze, e.g. `dacs+entropy`); register your own as in",
        "[Getting started](../getting-started.md#write-your-own-strategy).",
        "",
        *rows,
        "",
    ])
    return pages


# ------------------------------------------------------------------------ API
def _public_modules(directory: Path, prefix: str) -> list[str]:
    return sorted(f"{prefix}.{p.stem}" for p in directory.glob("*.py") if not p.stem.startswith("_"))


def api_pages() -> dict[str, str]:
    """``api/<module>.md`` -> page with the mkdocstrings directive(s) of that module."""
    pages = {"api/activelearn.md": "# `activelearn`\n\n::: activelearn\n    options:\n      members: false\n      show_root_heading: false\n"}
    for mod in _public_modules(PKG_DIR, "activelearn"):
        pages[f"api/{mod.split('.')[-1]}.md"] = f"# `{mod}`\n\n::: {mod}\n    options:\n      show_root_heading: false\n"
    for sub in SUBPACKAGES:
        parts = [f"# `activelearn.{sub}`", "", f"::: activelearn.{sub}", "    options:", "      members: false", "      show_root_heading: false", ""]
        for mod in _public_modules(PKG_DIR / sub, f"activelearn.{sub}"):
            parts += [f"::: {mod}", "    options:", "      show_root_heading: true", "      heading_level: 2"]
            if "__doc__ =" in (PKG_DIR / sub / f"{mod.split('.')[-1]}.py").read_text(encoding="utf-8"):
                # a docstring built at import time (`__doc__ = ...`) is invisible to the static reader:
                # show such classes anyway (their strategy pages carry the runtime docstring)
                parts.append("      show_if_no_docstring: true")
            parts.append("")
        pages[f"api/{sub}.md"] = "\n".join(parts)
    return pages


def builtin_strategies() -> list[str]:
    """The strategies the package itself registers (a plugin or a test may register more; they get no page)."""
    from activelearn import strategies

    return [n for n in strategies.available() if strategies.get_class(n).__module__.startswith("activelearn.")]


def generated_pages() -> dict[str, str]:
    """Every generated page: path under docs/ -> Markdown."""
    return {**strategy_pages(), **api_pages()}


# ---------------------------------------------------------------- mkdocs hooks
def _nav_for(paths: list[str], index: str) -> list[Any]:
    titles = [{Path(p).stem: p} for p in paths if p != index]
    return [index, *titles]


def on_config(config: Any) -> Any:
    """Fill the "Strategies" and "API reference" sections of the navigation."""
    if str(ROOT / "src") not in sys.path:
        sys.path.insert(0, str(ROOT / "src"))
    pages = generated_pages()
    strat = sorted(p for p in pages if p.startswith("strategies/"))
    api = ["api/activelearn.md", *sorted(p for p in pages if p.startswith("api/") and p != "api/activelearn.md")]
    for item in config["nav"] or []:
        if isinstance(item, dict) and "Strategies" in item:
            item["Strategies"] = _nav_for(strat, "strategies/index.md")
        if isinstance(item, dict) and "API reference" in item:
            item["API reference"] = [{Path(p).stem: p} for p in api]
        if isinstance(item, dict) and "Results" in item:  # every results page, so a new one is never left out
            item["Results"] = [{_title(p): f"results/{p.name}"} for p in sorted((ROOT / "docs" / "results").glob("*.md"))]
    listed = set(_nav_paths(config["nav"] or []))
    for item in config["nav"] or []:
        if isinstance(item, dict) and isinstance(item.get("Guides"), list):  # a new docs/*.md page joins the guides
            item["Guides"] += [{_title(p): p.name} for p in sorted((ROOT / "docs").glob("*.md")) if p.name not in listed]
    return config


def _nav_paths(nav: Any) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [p for v in nav.values() for p in _nav_paths(v)]
    if isinstance(nav, list):
        return [p for v in nav for p in _nav_paths(v)]
    return []


def _title(path: Path) -> str:
    """A page's first heading without its parenthetical (the sidebar's title)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return re.sub(r"\s*\([^)]*\)", "", line[2:]).strip()
    return path.stem


def on_files(files: Any, config: Any) -> Any:
    """Add the generated pages to the site's files."""
    from mkdocs.structure.files import File

    for path, text in generated_pages().items():
        files.append(File.generated(config, path, content=text))
    return files


_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj):<code>(~?)([^<]*)</code>")


def _strip_role(match: re.Match[str]) -> str:
    target = match.group(2)
    return f"<code>{target.rsplit('.', 1)[-1] if match.group(1) else target}</code>"


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Show the docstrings' Sphinx roles (``:class:`~a.B```) as code (``B``), as Sphinx would."""
    return _ROLE.sub(_strip_role, html)


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "site_pages")
    for rel, text in generated_pages().items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text, encoding="utf-8")
    print(f"wrote {len(generated_pages())} pages to {out}")
