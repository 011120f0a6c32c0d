"""FileOracle: a person answers query files; bad answers are refused, corrected ones accepted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import activelearn as al
from activelearn.cli import main
from activelearn.exceptions import AnswersInvalid, AnswersPending, InvalidParameterError, OracleError
from activelearn.experiment import make_loop
from activelearn.file_oracle import FileOracle


def _pending_query(folder: Path) -> dict:
    files = sorted(folder.glob("query_*.json"), key=lambda p: p.stat().st_mtime_ns)
    return json.loads(files[-1].read_text())


def _write_csv(path: Path, rows: list[tuple]) -> None:
    path.write_text("index,label\n" + "".join(f"{i},{y}\n" for i, y in rows))


def test_round_trip_bad_row_refused_corrected_file_accepted_loop_continues(tmp_path: Path) -> None:
    bundle = al.datasets.digits()
    truth = bundle.train_y.numpy()
    odir, out = tmp_path / "queries", tmp_path / "run"

    def build():
        return make_loop("digits", "entropy", initial=10, budget=5, cycles=2, seed=0, train=al.TrainConfig(epochs=3),
                         progress=False, out_dir=out, oracle="file", oracle_dir=odir)

    with pytest.raises(AnswersPending, match=r"query of cycle 0 \(10 samples\) written to .*query_c000-.*answers_c000-.*\.csv"):
        build().run()
    q = _pending_query(odir)
    assert q["cycle"] == 0 and len(q["indices"]) == 10
    sheet = odir / Path(q["answers_csv"].replace("answers_", "query_")).with_suffix("") / "contact_sheet.png"
    assert sheet.is_file() and all((sheet.parent / f"{i}.png").is_file() for i in q["indices"])

    rows = [(i, int(truth[i])) for i in q["indices"]]
    bad = list(rows)
    bad[3] = (bad[3][0], 12)  # one label out of range
    _write_csv(odir / q["answers_csv"], bad)
    loop = build().restore()
    with pytest.raises(AnswersInvalid, match=r"refused, nothing was recorded: row 5: label .12. is outside 0\.\.9\. Fix the file"):
        loop.run()
    assert loop.pools.n_labeled == 0 and load_stage(out) == "initial"

    _write_csv(odir / q["answers_csv"], rows)  # corrected
    loop = build().restore()
    with pytest.raises(AnswersPending, match="query of cycle 1 \\(5 samples\\)"):
        loop.run()  # initial answers accepted, cycle 0 trained, its selection written as the next query
    assert loop.pools.n_labeled == 10 and load_stage(out) == "selected"
    q1 = _pending_query(odir)
    assert q1["cycle"] == 1 and not set(q1["indices"]) & set(q["indices"])
    (odir / q1["answers_json"]).write_text(json.dumps({str(i): int(truth[i]) for i in q1["indices"]}))
    history = build().restore().run()
    assert [r.n_labeled for r in history.records] == [10, 15]
    assert history.records[0].selected == q1["indices"]
    final = json.loads((out / "annotations.json").read_text())
    assert [e["index"] for e in final] == q["indices"] + q1["indices"]
    assert all(e["label"] == truth[e["index"]] for e in final)


def load_stage(out: Path) -> str:
    from activelearn.checkpoint import load_checkpoint

    return load_checkpoint(out)["stage"]


@pytest.fixture
def asked(tmp_path: Path) -> tuple[FileOracle, al.Query]:
    oracle = FileOracle(tmp_path, num_classes=3)
    query = al.Query(np.array([4, 7, 9]), cycle=2)
    with pytest.raises(AnswersPending):
        oracle.answer(query)
    return oracle, query


@pytest.mark.parametrize(
    "body, message",
    [
        ("index,label\n4,0\n7,1\n9,2\n5,1\n", r"row 5: index 5 was not in this query"),
        ("index,label\n4,0\n7,1\n7,2\n9,2\n", r"row 4: index 7 is answered twice"),
        ("index,label\n4,0\n7,1\n", r"1 queried sample\(s\) have no answer, e.g. \[9\]"),
        ("index,label\n4,0\n7,cat\n9,1\n", r"row 3: label 'cat' is not a number"),
        ("index,label\n4,0\n7,1.5\n9,1\n", r"row 3: label '1.5' is outside 0\.\.2"),
        ("index,label\n4,0\n7,\n9,1\n", r"row 3: label is missing \(write in_task=false"),
        ("index,label\nfour,0\n7,1\n9,1\n", r"row 2: index 'four' is not an integer"),
        ("idx,lab\n4,0\n", r"needs a header row with columns index,label"),
        ("index,label,in_task\n4,0,maybe\n7,1,\n9,1,\n", r"in_task 'maybe' is not true/false"),
        ("index,label,cost\n4,0,-1\n7,1,\n9,1,\n", r"cost '-1' must be a number >= 0"),
    ],
    ids=["unknown-index", "duplicate", "missing", "label-not-number", "label-out-of-range", "label-missing",
         "index-not-int", "no-header", "bad-in-task", "bad-cost"],
)
def test_bad_answers_files_are_refused_with_the_row(asked, body: str, message: str) -> None:
    oracle, query = asked
    oracle.answer_files(query)[0].write_text(body)
    with pytest.raises(AnswersInvalid, match=message):
        oracle.answer(query)


def test_json_answers_and_declined_samples(asked) -> None:
    oracle, query = asked
    oracle.answer_files(query)[1].write_text(json.dumps([
        {"index": 9, "label": 2, "cost": 3.5}, {"index": 4, "label": 0}, {"index": 7, "label": None, "in_task": False},
    ]))
    answers = oracle.answer(query)
    assert [(a.index, a.label, a.in_task, a.cost) for a in answers] == [(4, 0, True, 1.0), (7, None, False, 1.0), (9, 2, True, 3.5)]
    pools = al.Pools(np.zeros((10, 2), dtype=np.float32), num_classes=3)
    pools.record(answers, cycle=2)
    assert pools.rejected.tolist() == [7] and pools.labeled.tolist() == [4, 9]


def test_invalid_json_and_two_answer_files(asked) -> None:
    oracle, query = asked
    oracle.answer_files(query)[1].write_text("{not json")
    with pytest.raises(AnswersInvalid, match="is not valid JSON"):
        oracle.answer(query)
    oracle.answer_files(query)[0].write_text("index,label\n4,0\n7,1\n9,2\n")
    with pytest.raises(AnswersInvalid, match="exist for one query; keep one of them"):
        oracle.answer(query)


def test_waits_for_answers_until_the_timeout(tmp_path: Path) -> None:
    import threading

    oracle = FileOracle(tmp_path, num_classes=2, timeout=5.0, poll=0.05)
    query = al.Query(np.array([1, 0]), cycle=0)
    timer = threading.Timer(0.3, lambda: oracle.answer_files(query)[0].write_text("index,label\n0,1\n1,0\n"))
    timer.start()
    answers = oracle.answer(query)
    timer.join()
    assert [(a.index, a.label) for a in answers] == [(1, 0), (0, 1)]
    quick = FileOracle(tmp_path / "b", timeout=0.1, poll=0.02)
    with pytest.raises(AnswersPending):
        quick.answer(query)


def test_file_oracle_refuses_bad_settings_and_cluster_queries(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="num_classes must be an int >= 2"):
        FileOracle(tmp_path, num_classes=1)
    with pytest.raises(InvalidParameterError, match="timeout must be a finite number >= 0, got -1"):
        FileOracle(tmp_path, timeout=-1)
    with pytest.raises(OracleError, match="sample queries only"):
        FileOracle(tmp_path).answer(al.Query(np.array([1]), groups=(np.array([2, 3]),)))


def test_cli_file_oracle_exits_3_then_resumes(tmp_path: Path, capsys) -> None:
    out, odir = tmp_path / "run", tmp_path / "q"
    truth = al.datasets.digits().train_y.numpy()
    args = ["run", "--dataset", "digits", "--strategy", "margin", "--initial", "8", "--budget", "4", "--cycles", "2",
            "--epochs", "2", "--out", str(out), "--oracle", "file", "--oracle-dir", str(odir), "--no-progress"]
    assert main(args) == 3
    assert "waiting for answers" in capsys.readouterr().err
    for _ in range(2):
        q = _pending_query(odir)
        _write_csv(odir / q["answers_csv"], [(i, int(truth[i])) for i in q["indices"]])
        code = main(["run", "--resume", str(out), "--no-progress"])
    assert code == 0
    assert "margin on digits (seed 0)" in capsys.readouterr().out
    assert len(al.History.load_json(out / "history.json")) == 2
