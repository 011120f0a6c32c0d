"""Learning Loss, NCE-Net and their expand-and-squeeze combinations run through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from activelearn.cli import main


@pytest.mark.parametrize("name", ["learning_loss", "ncenet", "coreset+learning_loss", "coreset+ncenet"])
def test_cli_runs_on_digits(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--dataset", "digits", "--strategy", name, "--cycles", "2", "--epochs", "2", "--no-progress", "--out", str(tmp_path)])
    assert code == 0
    assert f"{name} on digits" in capsys.readouterr().out
    records = json.loads((tmp_path / "history.json").read_text())["records"]
    assert len(records) == 2 and len(records[0]["selected"]) == 20


def test_cli_rejects_entropy_parameters_for_ncenet(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--dataset", "digits", "--strategy", "ncenet", "--param", "criterion=entropy", "--no-progress"]) == 2
    assert "criterion must be one of" in capsys.readouterr().err
