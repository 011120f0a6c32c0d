"""The notebooks in examples/ run from top to bottom (nbclient), and are committed without outputs.

Each notebook runs on scikit-learn's digits in a fresh kernel of this Python;
the three together take about a minute on a 2-core CPU.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "examples").glob("*.ipynb"))
NAMES = [p.name for p in NOTEBOOKS]


def test_the_three_notebooks_are_there() -> None:
    assert {"quickstart.ipynb", "custom_strategy.ipynb", "open_set_costs.ipynb"} <= set(NAMES)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_committed_without_outputs(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, (
                f"{path.name}, cell {i} has outputs: clear them before committing "
                f"(jupyter nbconvert --clear-output --inplace {path.relative_to(ROOT)})"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_notebook_runs(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")  # the notebooks draw learning curves (the [plot] extra)
    nb = nbformat.read(path, as_version=4)
    # the kernel imports this checkout's package (PYTHONPATH wins over an installed copy)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p))
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if a cell fails
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("output_type") == "error"]
    assert not errors
    assert any(o.get("output_type") == "stream" for c in nb.cells if c.cell_type == "code" for o in c.outputs)
