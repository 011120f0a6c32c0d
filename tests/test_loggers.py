"""Loggers as callbacks (activelearn.loggers): CSV per epoch and per cycle, TensorBoard event files."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

import activelearn as al
from activelearn.exceptions import InvalidParameterError
from activelearn.history import History
from activelearn.loggers import CSVLogger, TensorBoardLogger

EPOCHS = 3


def _loop(callbacks=(), **kw):
    loop = al.experiment.make_loop(
        "digits", "random", cycles=2, initial=20, budget=10, device="cpu", progress=False,
        train=al.TrainConfig(epochs=EPOCHS, batch_size=32, seed=0), **kw,
    )
    loop.callbacks.extend(callbacks)
    return loop


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_the_loop_writes_epochs_csv_by_default(tmp_path: Path) -> None:
    loop = _loop(out_dir=tmp_path)
    history = loop.run()
    rows = _rows(tmp_path / "epochs.csv")
    assert [(int(r["cycle"]), int(r["epoch"])) for r in rows] == [(c, e) for c in range(2) for e in range(EPOCHS)]
    for c in range(2):  # the last epoch's loss is the cycle's train_loss
        last = [r for r in rows if int(r["cycle"]) == c][-1]
        assert float(last["train_loss"]) == pytest.approx(history[c].metrics["train_loss"], rel=1e-6)
        assert float(last["lr"]) > 0
    assert not (tmp_path / "cycles.csv").exists()  # the default leaves the per-cycle file to history.csv


def test_csv_logger_without_out_dir_writes_both_files(tmp_path: Path) -> None:
    loop = _loop(callbacks=[CSVLogger(tmp_path / "logs")])
    history = loop.run()
    assert len(_rows(tmp_path / "logs" / "epochs.csv")) == 2 * EPOCHS
    cycles = _rows(tmp_path / "logs" / "cycles.csv")
    assert [int(r["n_labeled"]) for r in cycles] == [r.n_labeled for r in history.records] == [20, 30]
    assert [float(r["accuracy"]) for r in cycles] == pytest.approx(list(history.metric("accuracy")))


def test_a_resumed_run_drops_the_epochs_of_the_interrupted_training(tmp_path: Path) -> None:
    path = tmp_path / "epochs.csv"
    path.write_text("cycle,epoch,train_loss,lr\n0,0,1.0,0.1\n0,1,0.5,0.1\n1,0,0.9,0.1\n")
    history = History()
    history.append(al.CycleRecord(cycle=0, n_labeled=20, interactions=20, cost=20.0, metrics={}))
    view = SimpleNamespace(history=history, out_dir=tmp_path, pending=None)
    CSVLogger().on_run_start(view)  # cycle 1 was interrupted mid-training: it is trained again
    assert [(r["cycle"], r["epoch"]) for r in _rows(path)] == [("0", "0"), ("0", "1")]
    path.write_text("cycle,epoch,train_loss,lr\n0,0,1.0,0.1\n1,0,0.9,0.1\n")
    view.pending = {"record": None}  # restored inside cycle 1's selection: its training stays
    CSVLogger().on_run_start(view)
    assert [(r["cycle"], r["epoch"]) for r in _rows(path)] == [("0", "0"), ("1", "0")]


def test_tensorboard_logger_needs_a_directory() -> None:
    view = SimpleNamespace(history=History(), out_dir=None)
    with pytest.raises(InvalidParameterError, match="log_dir"):
        TensorBoardLogger().on_run_start(view)


def test_tensorboard_run_directory_has_the_events(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    loop = _loop(out_dir=tmp_path, callbacks=[TensorBoardLogger()])
    history = loop.run()
    run_dir = tmp_path / "tensorboard"
    assert list(run_dir.glob("events.out.tfevents.*")), "no event file written"
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train_loss/cycle_0", "train_loss/cycle_1", "lr/cycle_0", "cycle/accuracy", "cycle/cost"} <= tags
    assert [e.step for e in acc.Scalars("train_loss/cycle_1")] == list(range(EPOCHS))
    curve = acc.Scalars("cycle/accuracy")
    assert [e.step for e in curve] == [20, 30]
    assert [e.value for e in curve] == pytest.approx(list(history.metric("accuracy")), rel=1e-6)
    assert acc.Scalars("train_loss/cycle_0")[-1].value == pytest.approx(history[0].metrics["train_loss"], rel=1e-6)
    assert "meta/text_summary" in acc.Tags()["tensors"]  # the run's metadata as text


def test_history_meta_records_what_the_run_ran_on() -> None:
    import numpy as np
    import torch

    meta = _loop().history.meta
    env = meta["environment"]
    assert meta["seed"] == 0
    assert env["torch"] == torch.__version__ and env["numpy"] == np.__version__
    assert env["device"] == "cpu" and env["torch_threads"] == torch.get_num_threads()
    assert "activelearn" in env
    git = shutil.which("git")
    src = Path(al.__file__).resolve().parent
    head = subprocess.run([git, "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, check=False) if git else None
    if head is not None and head.returncode == 0:
        assert env["git_commit"] == head.stdout.strip()
    else:
        assert env["git_commit"] is None
