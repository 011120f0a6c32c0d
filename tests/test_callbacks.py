"""Loop callbacks: the named hooks fire in order, plain callables still work, and the built-ins do their books."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

import activelearn as al
from activelearn.callbacks import Callback, ClusterBooks, open_set_books

from test_contract import build_resume_loop


class Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_run_start(self, loop):
        self.events.append(("run_start",))

    def on_cycle_start(self, loop, cycle):
        self.events.append(("cycle_start", cycle))

    def on_record(self, loop, record):
        self.events.append(("record", record.cycle, record.extra["in_task_labels"]))

    def on_selection(self, loop, record, query):
        self.events.append(("selection", None if record is None else record.cycle, len(query.all_indices)))

    def on_answers(self, loop, record, entries):
        self.events.append(("answers", None if record is None else record.cycle, len(entries)))

    def on_cycle_end(self, loop, record):
        self.events.append(("cycle_end", record.cycle, len(loop.history)))

    def on_run_end(self, loop):
        self.events.append(("run_end",))


def test_hooks_fire_in_order_with_the_books_of_each_step(tmp_path) -> None:
    rec = Recorder()
    seen = []
    loop = build_resume_loop("random", None)
    loop.callbacks = [rec, lambda lp, r: seen.append(r.cycle)]  # a plain callable: called at the end of each cycle
    loop.run()
    assert rec.events == [
        ("run_start",),
        ("selection", None, 12), ("answers", None, 12),
        ("cycle_start", 0), ("record", 0, 12), ("selection", 0, 6), ("answers", 0, 6), ("cycle_end", 0, 1),
        ("cycle_start", 1), ("record", 1, 18), ("selection", 1, 6), ("answers", 1, 6), ("cycle_end", 1, 2),
        ("cycle_start", 2), ("record", 2, 24), ("cycle_end", 2, 3),
        ("run_end",),
    ]
    assert seen == [0, 1, 2]


def test_what_a_callback_adds_to_extra_is_checkpointed_and_survives_a_resume(tmp_path) -> None:
    def note(loop, record):
        record.extra["note"] = float(record.cycle * 10)

    loop = build_resume_loop("entropy", tmp_path)
    loop.callbacks.append(note)
    fit = loop.trainer.fit

    def stop_at_2(model, pools, *, cycle=0):
        if cycle == 2:
            raise KeyboardInterrupt
        return fit(model, pools, cycle=cycle)

    loop.trainer.fit = stop_at_2
    with pytest.raises(KeyboardInterrupt):
        loop.run()
    again = build_resume_loop("entropy", tmp_path).restore()
    assert [r.extra["note"] for r in again.history.records] == [0.0, 10.0]


def test_checkpointer_stages_follow_the_hooks(tmp_path) -> None:
    from activelearn.checkpoint import load_checkpoint

    stages = []

    class Probe(Callback):  # runs before the Checkpointer: sees the previous stage on disk
        def on_answers(self, loop, record, entries):
            if (tmp_path / "checkpoint.pt").exists():
                stages.append(load_checkpoint(tmp_path)["stage"])

    loop = build_resume_loop("random", tmp_path)
    loop.callbacks.append(Probe())
    loop.run()
    assert stages == ["initial", "selected", "selected"]
    assert load_checkpoint(tmp_path)["stage"] == "cycle"


def test_open_set_and_cluster_books_by_hand() -> None:
    loop = build_resume_loop("random", None, every=3)
    pools, oracle = loop.pools, loop.oracle
    pools.record(oracle.answer(al.Query(np.arange(9))), cycle=0)  # indices 0, 3, 6 are not in the task
    books = open_set_books(pools)
    assert books == {"in_task_labels": 6, "rejected": 3, "examined": 9, "wasted_cost": 3.0}
    # cluster answers logged as cycle 1 belong to cycle 0's record: one accepted cluster (all class 1), one declined
    y = oracle.targets
    ones = np.flatnonzero((y == 1) & oracle.in_task)
    ones = ones[~np.isin(ones, np.arange(9))][:4]
    mixed = np.array([10, 11, 12, 13, 14])
    pools.record(oracle.answer(al.Query(np.zeros(0, np.int64), groups=(ones, mixed))), cycle=1)
    record = al.CycleRecord(cycle=0, n_labeled=6, interactions=9, cost=9.0, metrics={})
    ClusterBooks().on_cycle_end(loop, record)
    assert record.extra == {"clusters_accepted": 1.0, "clusters_declined": 1.0, "cluster_labeled": 4.0, "cluster_label_accuracy": 1.0}


def test_epoch_hook_sees_every_epoch_with_its_loss_and_lr() -> None:
    class Epochs(Callback):
        def __init__(self) -> None:
            self.seen: list[tuple[int, int, float, float]] = []

        def on_epoch_end(self, loop, cycle, epoch, logs):  # type: ignore[no-untyped-def]
            self.seen.append((cycle, epoch, logs["train_loss"], logs["lr"]))

    loop = build_resume_loop("random", None)
    loop.trainer.config = loop.trainer.config.replace(epochs=3, lr=0.1, milestones=(2,), gamma=0.1)
    cb = Epochs()
    loop.callbacks = [cb]
    history = loop.run()
    assert [(c, e) for c, e, _, _ in cb.seen] == [(c, e) for c in range(len(history)) for e in range(3)]
    assert [lr for *_, lr in cb.seen[:3]] == pytest.approx([0.1, 0.1, 0.01])
    for r in history.records:  # the cycle's train_loss is its last epoch's
        assert [loss for c, e, loss, _ in cb.seen if c == r.cycle and e == 2] == [r.metrics["train_loss"]]


# ------------------------------------------------------------------ progress (issue 16)
class _Terminal(io.StringIO):
    """A stream that says it is a terminal (as a console's stderr does)."""

    def isatty(self) -> bool:
        return True


def _progress_loop(trainer_progress: bool = False) -> al.ActiveLoop:
    loop = build_resume_loop("random", None)
    loop.progress = True
    loop.trainer.progress = trainer_progress
    return loop


def test_progress_off_a_terminal_writes_one_plain_line_per_cycle(monkeypatch) -> None:
    log = io.StringIO()  # like CI, nohup or a log file: not a terminal
    monkeypatch.setattr(sys, "stderr", log)
    history = _progress_loop(trainer_progress=True).run()
    lines = log.getvalue().splitlines()
    assert len(lines) == 3 == len(history)  # one per cycle; no per-epoch or per-update output from any bar
    assert "\r" not in log.getvalue() and "it/s" not in log.getvalue()
    for r, line in zip(history.records, lines):
        assert line.startswith(f"random cycle {r.cycle + 1}/3: labeled {r.n_labeled}, ")
        assert f"accuracy {r.metrics['accuracy']:.4g}" in line


def test_progress_on_a_terminal_nests_the_epoch_bars_under_the_cycle_bar(monkeypatch) -> None:
    tty = _Terminal()
    monkeypatch.setattr(sys, "stderr", tty)
    _progress_loop(trainer_progress=True).run()
    out = tty.getvalue()
    assert "random" in out and "3/3" in out  # the cycle bar, finished and left on screen
    assert "train c0" in out and "train c2" in out  # the trainer's epoch bars, one per cycle
    assert "\r" in out and "cycle 1/3:" not in out  # bars, not plain lines
    assert "\x1b[A" in out  # tqdm moved the cursor: the epoch bar sat on the line below the cycle bar


def test_progress_is_silent_when_the_loop_says_so(monkeypatch) -> None:
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    loop = _progress_loop()
    loop.progress = False
    loop.run()
    assert log.getvalue() == ""


def test_interactive_and_the_shared_bar_helper() -> None:
    from activelearn.progress import interactive, tqdm

    assert not interactive(io.StringIO()) and interactive(_Terminal())
    closed = io.StringIO()
    closed.close()
    assert not interactive(closed)
    steps = range(4)
    assert tqdm(steps, file=io.StringIO(), desc="x") is steps  # off a terminal: the iterable itself, nothing written
    tty = _Terminal()
    assert list(tqdm(steps, file=tty, desc="x", leave=False)) == [0, 1, 2, 3]
    assert "x:" in tty.getvalue()
