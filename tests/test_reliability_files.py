"""Reliability battery, files part: malformed answers files, Label Studio exports and History files.

Every case writes one bad file and checks the library's exception and a
fragment of its message; an answers file refused records nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import activelearn as al
from activelearn import labelstudio
from activelearn.exceptions import ActiveLearnError, AnswersInvalid, AnswersPending, InvalidInputError, InvalidParameterError
from activelearn.file_oracle import FileOracle
from activelearn.history import History

QUERY = al.Query(np.array([4, 7, 9]), cycle=2)


def _asked(folder: Path, **kw: Any) -> FileOracle:
    oracle = FileOracle(folder, **{"num_classes": 3, **kw})
    with pytest.raises(AnswersPending):
        oracle.answer(QUERY)
    return oracle


# (id, suffix, file content (str or bytes), fragment of the AnswersInvalid message)
ANSWER_FILES: list[tuple[str, str, Any, str]] = [
    ("csv-empty", "csv", "", "needs a header row with columns index,label (optional: in_task, cost); got []"),
    ("csv-header-only", "csv", "index,label\n", "3 queried sample(s) have no answer, e.g. [4, 7, 9]"),
    ("csv-binary", "csv", b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "cannot read"),
    ("csv-latin1", "csv", "index,label\n4,caf\xe9\n".encode("latin-1"), "write it as UTF-8 text and resume"),
    ("csv-semicolons", "csv", "index;label\n4;0\n7;1\n9;2\n", "needs a header row with columns index,label"),
    ("csv-label-float", "csv", "index,label\n4,2.5\n7,1\n9,0\n", "row 2: label '2.5' is outside 0..2"),
    ("csv-label-negative", "csv", "index,label\n4,-1\n7,1\n9,0\n", "row 2: label '-1' is outside 0..2"),
    ("csv-label-inf", "csv", "index,label\n4,1e400\n7,1\n9,0\n", "row 2: label '1e400' is not a finite number"),
    ("csv-label-nan", "csv", "index,label\n4,nan\n7,1\n9,0\n", "row 2: label 'nan' is not a finite number"),
    ("csv-index-float", "csv", "index,label\n4.5,0\n7,1\n9,0\n", "row 2: index '4.5' is not an integer"),
    ("csv-index-empty", "csv", "index,label\n,0\n7,1\n9,0\n", "row 2: index '' is not an integer"),
    ("csv-index-negative", "csv", "index,label\n-4,0\n7,1\n9,0\n", "row 2: index -4 was not in this query"),
    ("csv-short-row", "csv", "index,label\n4\n7,1\n9,0\n", "row 2: label is missing (write in_task=false to decline a sample)"),
    ("csv-cost-text", "csv", "index,label,cost\n4,0,abc\n7,1,1\n9,0,1\n", "row 2: cost 'abc' must be a number >= 0"),
    ("csv-cost-inf", "csv", "index,label,cost\n4,0,inf\n7,1,1\n9,0,1\n", "row 2: cost 'inf' must be a number >= 0"),
    ("csv-many-problems", "csv", "index,label\n" + "".join(f"{i},x\n" for i in range(100, 112)), "; and 2 more. Fix the file"),
    ("json-scalar", "json", "3", "must hold a list of {'index', 'label'} objects or an index -> label object, got int"),
    ("json-null", "json", "null", "got NoneType"),
    ("json-list-of-numbers", "json", "[4, 7, 9]", "got list"),
    ("json-truncated", "json", '[{"index": 4, "label": 0}', "is not valid JSON"),
    ("json-key-not-int", "json", '{"four": 0, "7": 1, "9": 2}', "key 'four': index 'four' is not an integer"),
    ("json-label-bool", "json", '{"4": true, "7": 1, "9": 2}', "key '4': label True is not a number"),
    ("json-label-list", "json", '{"4": [0], "7": 1, "9": 2}', "key '4': label [0] is not a number"),
    ("json-index-bool", "json", '[{"index": true, "label": 0}]', "item 0: index True is not an integer"),
    ("json-index-float", "json", '[{"index": 4.0, "label": 0}]', "item 0: index 4.0 is not an integer"),
    ("json-cost-bool", "json", '[{"index": 4, "label": 0, "cost": true}, {"index": 7, "label": 1}, {"index": 9, "label": 2}]', "item 0: cost True must be a number >= 0"),
    ("json-in-task-number", "json", '[{"index": 4, "label": 0, "in_task": 2}, {"index": 7, "label": 1}, {"index": 9, "label": 2}]', "item 0: in_task 2 is not true/false"),
]


@pytest.mark.parametrize("suffix, content, fragment", [pytest.param(*c[1:], id=c[0]) for c in ANSWER_FILES])
def test_malformed_answers_file_is_refused_whole(tmp_path: Path, suffix: str, content: Any, fragment: str) -> None:
    oracle = _asked(tmp_path)
    path = oracle.answer_files(QUERY)[0 if suffix == "csv" else 1]
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    with pytest.raises(AnswersInvalid, match=re.escape(fragment)):
        oracle.answer(QUERY)


def test_answers_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """Spreadsheet programs write a UTF-8 byte order mark before the header; it is not part of 'index'."""
    oracle = _asked(tmp_path)
    oracle.answer_files(QUERY)[0].write_bytes("\ufeffindex,label\n4,0\n7,1\n9,2\n".encode("utf-8"))
    assert [(a.index, a.label) for a in oracle.answer(QUERY)] == [(4, 0), (7, 1), (9, 2)]


def test_a_folder_named_like_the_answers_file_is_no_answer(tmp_path: Path) -> None:
    oracle = _asked(tmp_path)
    oracle.answer_files(QUERY)[0].mkdir()
    with pytest.raises(AnswersPending, match="write the labels to"):
        oracle.answer(QUERY)


FILE_ORACLE_SETTINGS: list[tuple[str, dict[str, Any], str]] = [
    ("num-classes-1", {"num_classes": 1}, "num_classes must be an int >= 2 or None, got 1"),
    ("num-classes-str", {"num_classes": "3"}, "num_classes must be an int >= 2 or None, got '3'"),
    ("timeout-inf", {"timeout": float("inf")}, "timeout must be a finite number >= 0, got inf"),
    ("poll-negative", {"poll": -1}, "poll must be a finite number >= 0, got -1"),
    ("cost-nan", {"cost": float("nan")}, "cost must be a finite number >= 0, got nan"),
    ("poll-zero-with-timeout", {"poll": 0, "timeout": 5}, "poll must be > 0 when timeout > 0"),
]


@pytest.mark.parametrize("kw, fragment", [pytest.param(*c[1:], id=c[0]) for c in FILE_ORACLE_SETTINGS])
def test_file_oracle_settings_are_refused(tmp_path: Path, kw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidParameterError, match=re.escape(fragment)):
        FileOracle(tmp_path, **kw)


def test_refused_answers_record_nothing_in_a_loop(tmp_path: Path) -> None:
    """The loop asks a FileOracle; a bad file leaves pools and history untouched."""
    from conftest import blobs

    x, _ = blobs(40)
    oracle = FileOracle(tmp_path, num_classes=3)
    loop = al.ActiveLoop(al.ALModel(al.backbones.MLP(16, 3, hidden=(8,)), num_classes=3, device="cpu"), al.strategies.get("random"),
                         oracle, al.Pools(x, num_classes=3), budget=3, cycles=2, initial=[1, 2, 3], progress=False)
    with pytest.raises(AnswersPending):
        loop.run()
    query = al.Query(np.array([1, 2, 3]), cycle=0)
    oracle.answer_files(query)[0].write_text("index,label\n1,0\n2,1.5\n3,2\n")
    with pytest.raises(AnswersInvalid, match=re.escape("row 3: label '1.5' is outside 0..2")):
        loop.run()
    assert loop.pools.n_labeled == 0 and loop.pools.log == () and len(loop.history) == 0


# ---------------------------------------------------------------- Label Studio
def _query_file(folder: Path) -> Path:
    oracle = _asked(folder)
    return oracle.query_file(QUERY)


def _task(index: Any, *choices: str, cancelled: bool = False) -> dict[str, Any]:
    result = [{"type": "choices", "value": {"choices": list(choices)}}]
    return {"id": 1, "data": {"al_index": index}, "annotations": [{"result": result, "was_cancelled": cancelled}]}


# (id, export content (a JSON-able object or raw text), class names, exception, fragment)
LABEL_STUDIO: list[tuple[str, Any, list[str], type[Exception], str]] = [
    ("export-not-json", "{oops", ["a", "b", "c"], AnswersInvalid, "cannot read the Label Studio export"),
    ("export-not-list", {"tasks": []}, ["a", "b", "c"], AnswersInvalid, "a Label Studio JSON export is a list of tasks, got dict"),
    ("task-no-index", [{"id": 1, "data": {}, "annotations": []}], ["a", "b", "c"], AnswersInvalid, "task 1: data.al_index None is not a pool index"),
    ("task-bool-index", [_task(True, "a")], ["a", "b", "c"], AnswersInvalid, "task 1: data.al_index True is not a pool index"),
    ("task-unknown-choice", [_task(4, "zebra")], ["a", "b", "c"], AnswersInvalid, "task 1: choice 'zebra' is none of the classes ['a', 'b', 'c']"),
    ("task-two-choices", [_task(4, "a", "b")], ["a", "b", "c"], AnswersInvalid, "task 1: expected one choice in the last annotation, got ['a', 'b']"),
    ("task-only-cancelled", [_task(4, "a", cancelled=True)], ["a", "b", "c"], AnswersInvalid, "task 1: no annotation (or only cancelled ones)"),
    ("names-duplicate", [], ["a", "a"], InvalidParameterError, "class_names must be distinct, non-empty and not 'not in task', got ['a', 'a']"),
    ("names-empty", [], [], InvalidParameterError, "class_names must be distinct, non-empty"),
    ("names-reserved", [], ["a", labelstudio.NOT_IN_TASK], InvalidParameterError, "and not 'not in task'"),
]


@pytest.mark.parametrize("export, names, exc, fragment", [pytest.param(*c[1:], id=c[0]) for c in LABEL_STUDIO])
def test_bad_label_studio_input_is_refused(tmp_path: Path, export: Any, names: list[str], exc: type[Exception], fragment: str) -> None:
    query_file = _query_file(tmp_path)
    export_file = tmp_path / "export.json"
    export_file.write_text(export if isinstance(export, str) else json.dumps(export))
    with pytest.raises(exc, match=re.escape(fragment)):
        labelstudio.import_export(export_file, query_file, names)
    assert not list(tmp_path.glob("answers_*"))  # nothing written


@pytest.mark.parametrize("content, fragment", [
    pytest.param("not json", "cannot read the query file", id="query-not-json"),
    pytest.param('{"cycle": 1}', "is not a FileOracle query file (needs 'indices' and 'answers_json')", id="query-no-indices"),
])
def test_bad_query_file_is_refused(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "query_c001-abcdef.json"
    path.write_text(content)
    with pytest.raises(InvalidParameterError, match=re.escape(fragment)):
        labelstudio.export_tasks(path)


# ---------------------------------------------------------------- History files
HISTORY_FILES: list[tuple[str, Any, str]] = [
    ("empty", "", "cannot read a History from"),
    ("not-json", "cycle,accuracy\n0,0.5\n", "cannot read a History from"),
    ("binary", b"\x80\x81\xfe\xff", "cannot read a History from"),
    ("list", "[]", "is not a saved History"),
    ("no-records", '{"meta": {}}', "is not a saved History (a JSON object with 'records'"),
    ("records-not-list", '{"records": 5}', "is not a saved History"),
    ("record-not-object", '{"records": [1]}', "is not a saved History"),
    ("record-missing-fields", '{"records": [{"cycle": 0}]}', "missing 4 required positional arguments"),
    ("record-unknown-field", '{"records": [{"cycle": 0, "n_labeled": 1, "interactions": 1, "cost": 1, "metrics": {}, "acc": 1}]}', "unexpected keyword argument 'acc'"),
    ("meta-not-object", '{"records": [], "meta": 3}', "is not a saved History"),
]


@pytest.mark.parametrize("content, fragment", [pytest.param(*c[1:], id=c[0]) for c in HISTORY_FILES])
def test_history_load_json_refuses_garbage(tmp_path: Path, content: Any, fragment: str) -> None:
    path = tmp_path / "history.json"
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    with pytest.raises(InvalidInputError, match=re.escape(fragment)):
        History.load_json(path)


@pytest.mark.parametrize("make_path", [
    pytest.param(lambda tmp: tmp / "missing.json", id="missing"),
    pytest.param(lambda tmp: tmp, id="a-folder"),
])
def test_history_load_json_refuses_what_is_not_a_file(tmp_path: Path, make_path: Callable[[Path], Path]) -> None:
    with pytest.raises(InvalidInputError, match="cannot read a History from") as info:
        History.load_json(make_path(tmp_path))
    assert isinstance(info.value, ActiveLearnError)


def test_history_round_trip_still_works(tmp_path: Path) -> None:
    h = History(meta={"strategy": "x"})
    h.append(al.CycleRecord(cycle=0, n_labeled=5, interactions=5, cost=5.0, metrics={"accuracy": 0.5}))
    back = History.load_json(h.save_json(tmp_path / "h.json"))
    assert back.records == h.records and back.meta == h.meta
