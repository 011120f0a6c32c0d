"""Label Studio round trip: a FileOracle query -> tasks -> a Label Studio export -> answers the oracle accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from activelearn import labelstudio
from activelearn.exceptions import AnswersInvalid, AnswersPending, InvalidParameterError
from activelearn.file_oracle import FileOracle
from activelearn.oracle import Query

NAMES = [f"digit {c}" for c in range(3)]


def _asked(tmp_path: Path) -> tuple[FileOracle, Query, Path]:
    x = torch.linspace(0, 1, 10 * 64).reshape(10, 64)
    oracle = FileOracle(tmp_path / "oracle", num_classes=3, inputs=x, image_shape=(8, 8))
    query = Query(indices=np.array([7, 2, 5]), cycle=1)
    with pytest.raises(AnswersPending):
        oracle.answer(query)
    return oracle, query, oracle.query_file(query)


def _export(tasks_file: Path, choices: dict[int, list[Any]], cancelled: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    """What Label Studio's JSON export looks like for these tasks (id, data, annotations[].result[])."""
    tasks = json.loads(tasks_file.read_text())
    out = []
    for n, t in enumerate(tasks):
        i = t["data"]["al_index"]
        anns = []
        if i in cancelled:
            anns.append({"id": 90 + n, "was_cancelled": True, "result": []})
        if i in choices:
            anns.append({"id": n, "was_cancelled": False, "result": [
                {"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": choices[i]}}]})
        out.append({"id": 100 + n, "data": t["data"], "annotations": anns, "predictions": []})
    return out


def test_round_trip_through_the_file_oracle(tmp_path: Path) -> None:
    oracle, query, qfile = _asked(tmp_path)
    tasks_file = labelstudio.export_tasks(qfile)
    tasks = json.loads(tasks_file.read_text())
    assert [t["data"]["al_index"] for t in tasks] == [7, 2, 5]
    assert tasks[0]["data"]["image"].startswith("/data/local-files/?d=") and tasks[0]["data"]["image"].endswith("/7.png")
    export = tmp_path / "export.json"
    export.write_text(json.dumps(_export(tasks_file, {7: ["digit 2"], 2: ["digit 0"], 5: ["not in task"]}, cancelled=(2,))))
    answers_file = labelstudio.import_export(export, qfile, NAMES)
    assert answers_file == oracle.answer_files(query)[1]
    got = oracle.answer(query)
    assert [(a.index, a.label, a.in_task) for a in got] == [(7, 2, True), (2, 0, True), (5, None, False)]


def test_labeling_config_lists_the_classes() -> None:
    xml = labelstudio.labeling_config(NAMES, open_set=True)
    assert xml.count("<Choice ") == 4 and 'value="digit 1"' in xml and 'value="not in task"' in xml
    with pytest.raises(InvalidParameterError, match="distinct"):
        labelstudio.labeling_config(["a", "a"])


@pytest.mark.parametrize(
    ("choices", "message"),
    [
        ({7: ["digit 2"], 2: ["digit 0"]}, "task 102: no annotation"),  # 5 unanswered
        ({7: ["digit 2", "digit 1"], 2: ["digit 0"], 5: ["digit 1"]}, "expected one choice"),
        ({7: ["cat"], 2: ["digit 0"], 5: ["digit 1"]}, "choice 'cat' is none of the classes"),
    ],
)
def test_bad_exports_are_refused_whole(tmp_path: Path, choices: dict[int, list[Any]], message: str) -> None:
    oracle, query, qfile = _asked(tmp_path)
    export = tmp_path / "export.json"
    export.write_text(json.dumps(_export(labelstudio.export_tasks(qfile), choices)))
    with pytest.raises(AnswersInvalid, match=message):
        labelstudio.import_export(export, qfile, NAMES)
    assert not any(p.exists() for p in oracle.answer_files(query))


def test_the_file_oracle_checks_what_label_studio_gives(tmp_path: Path) -> None:
    oracle, query, qfile = _asked(tmp_path)
    tasks_file = labelstudio.export_tasks(qfile)
    rows = _export(tasks_file, {7: ["digit 2"], 2: ["digit 0"], 5: ["digit 1"]})
    rows[2]["data"]["al_index"] = 7  # a task edited to point at another sample: index 7 answered twice
    export = tmp_path / "export.json"
    export.write_text(json.dumps(rows))
    labelstudio.import_export(export, qfile, NAMES)
    with pytest.raises(AnswersInvalid, match="answered twice"):
        oracle.answer(query)
    # a class list longer than the task's classes gives a label the oracle refuses
    export.write_text(json.dumps(_export(tasks_file, {7: ["extra"], 2: ["digit 0"], 5: ["digit 1"]})))
    labelstudio.import_export(export, qfile, [*NAMES, "extra"])
    with pytest.raises(AnswersInvalid, match=r"outside 0\.\.2"):
        oracle.answer(query)


def test_not_an_export_or_not_a_query(tmp_path: Path) -> None:
    _, _, qfile = _asked(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a list"}')
    with pytest.raises(AnswersInvalid, match="list of tasks"):
        labelstudio.import_export(bad, qfile, NAMES)
    with pytest.raises(InvalidParameterError, match="not a FileOracle query file"):
        labelstudio.export_tasks(bad)
