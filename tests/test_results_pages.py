"""Every generated table in docs/results/ equals what its committed per-run data give."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "examples" / "results_pages.py"
_spec = importlib.util.spec_from_file_location("results_pages", _PATH)
assert _spec is not None and _spec.loader is not None
pages = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pages)


@pytest.mark.parametrize(("page", "table_id"), sorted(pages.TABLES))
def test_page_table_matches_committed_data(page: str, table_id: str) -> None:
    assert pages.page_table(page, table_id) == pages.TABLES[(page, table_id)](), (
        f"docs/results/{page} ({table_id}) differs from its data: run python examples/results_pages.py"
    )


def test_check_mode_detects_a_changed_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (page, table_id), build = next(iter(sorted(pages.TABLES.items())))
    src = pages.RESULTS / page
    copy = tmp_path / page
    text = src.read_text()
    table = pages.page_table(page, table_id)
    first_number = next(tok for tok in table.split() if tok.replace(".", "", 1).isdigit() and "." in tok)
    bumped = f"{float(first_number) + 0.1:.1f}"
    copy.write_text(text.replace(table, table.replace(first_number, bumped, 1)))
    expected = build()
    monkeypatch.setattr(pages, "RESULTS", tmp_path)
    monkeypatch.setattr(pages, "TABLES", {(page, table_id): lambda: expected})
    assert pages.main(["--check"]) == 1


def test_main_rmnist_rows_equal_the_committed_data() -> None:
    """Every strategy row of the main table is what the committed per-run histories give (all ten strategies)."""
    main = (pages.RESULTS / "rmnist.md").read_text().split("## Reading")[0].splitlines()
    rows = pages.rmnist_main_rows().splitlines()[2:]
    assert len(rows) == 10
    for row in rows:
        assert row in main, f"main table row differs from the committed data: {row}"
