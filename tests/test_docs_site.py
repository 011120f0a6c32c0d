"""The documentation site's generated pages (tools/docs_hooks.py): one page per registered strategy.

Fast: builds the Markdown in memory; `mkdocs build --strict` itself runs in .ci/run.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path

import pytest

import activelearn as al

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_docs_{name}", ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _load("docs_hooks")
META = _load("strategy_meta").STRATEGY_META


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return hooks.generated_pages()


def test_every_registered_strategy_has_a_page(pages):
    names = hooks.builtin_strategies()
    assert len(names) >= 20
    missing = [n for n in names if f"strategies/{n}.md" not in pages]
    assert not missing, f"registered strategies without a docs page: {missing}"
    index = pages["strategies/index.md"]
    for n in names:
        assert f"[`{n}`]({n}.md)" in index


def test_every_registered_strategy_has_metadata():
    missing = sorted(set(hooks.builtin_strategies()) - set(META))
    assert not missing, f"add these strategies to tools/strategy_meta.py: {missing}"
    stale = sorted(set(META) - set(hooks.builtin_strategies()))
    assert not stale, f"tools/strategy_meta.py describes strategies that are not registered: {stale}"


def test_a_strategy_without_metadata_gets_no_page():
    with pytest.raises(KeyError, match=r"strategy_meta\.py"):
        hooks.strategy_page("coreset", meta={})


def test_parameters_and_defaults_come_from_the_constructor(pages):
    page = pages["strategies/coreset.md"]
    assert "| `metric` | `'euclidean'` |" in page
    assert "| `chunk_size` | `65536` |" in page
    # every keyword of every strategy's constructor is listed
    for n in hooks.builtin_strategies():
        cls = al.strategies.get_class(n)
        for p in inspect.signature(cls.__init__).parameters.values():
            if p.name != "self" and p.kind == p.KEYWORD_ONLY:
                assert f"| `{p.name}` | `{p.default!r}` |" in pages[f"strategies/{n}.md"], (n, p.name)


def test_parameter_descriptions_come_from_the_numpydoc_section() -> None:
    pytest.importorskip("griffe")  # the [docs] extra's docstring parser
    page = hooks.strategy_page("coreset", META)
    assert "| `metric` | `'euclidean'` | Distance (the paper uses Euclidean). |" in page
    # "ae_epochs, ae_batch_size, ae_lr : ..." documents three parameters at once
    assert "| `ae_lr` | `0.001` | Autoencoder training (Adam, MSE), once per pool. |" in hooks.strategy_page("ibal_d", META)


def test_needs_are_read_from_the_class(pages):
    dacs = pages["strategies/dacs.md"]
    assert "`aux_embedding`" in dacs and "`AuxiliaryHead`" in dacs
    assert "dropout layers" in pages["strategies/bald.md"]
    assert "dropout layers" not in pages["strategies/entropy.md"]
    assert "Model extensions it attaches: none." in pages["strategies/entropy.md"]


def test_reproduction_or_no_reproduction_yet(pages):
    assert "No reproduction yet." in pages["strategies/margin.md"]
    dacs = pages["strategies/dacs.md"]
    assert "No reproduction yet." not in dacs and "(../results/rmnist.md)" in dacs


_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


@pytest.mark.parametrize("name", sorted(META))
def test_quoted_results_appear_on_the_linked_page(name):
    """Every number of a reproduction sentence is on the results page it links (nothing typed from memory)."""
    for page, text in META[name]["results"]:
        path = ROOT / "docs" / page
        assert path.is_file(), f"{name}: results page {page} does not exist"
        body = path.read_text(encoding="utf-8")
        for number in _NUMBER.findall(text):
            number = number.rstrip(",")
            assert number in body, f"{name}: {number} (in {text!r}) is not on {page}"


def test_api_pages_cover_the_public_modules(pages):
    for path in (ROOT / "src" / "activelearn").glob("*.py"):
        if not path.stem.startswith("_"):
            assert f"::: activelearn.{path.stem}" in pages[f"api/{path.stem}.md"]
    assert "::: activelearn.strategies.badge" in pages["api/strategies.md"]


def test_sphinx_roles_in_docstrings_render_as_code() -> None:
    html = "see :class:<code>~activelearn.callbacks.HistoryFiles</code> and :func:<code>activelearn.ops.kmeans</code>"
    assert hooks.on_page_content(html, None, None, None) == "see <code>HistoryFiles</code> and <code>activelearn.ops.kmeans</code>"


def test_every_page_is_in_the_navigation(pages) -> None:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = set(hooks._nav_paths(hooks.on_config(config)["nav"]))
    docs = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    missing = sorted((docs | set(pages)) - nav)
    assert not missing, f"pages missing from the site's navigation: {missing}"
    assert "strategies/dacs.md" in nav and "results/rmnist.md" in nav and "api/loggers.md" in nav
