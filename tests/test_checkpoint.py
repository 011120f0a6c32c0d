"""Checkpoint and resume: a run killed at any point continues to the same result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn.checkpoint import atomic_write_text, load_checkpoint, rng_state, set_rng_state
from activelearn.exceptions import CheckpointError
from activelearn.experiment import make_loop, resume

SRC = str(Path(__file__).resolve().parents[1] / "src")
CLI_ARGS = ["--dataset", "digits", "--strategy", "entropy", "--initial", "20", "--budget", "20", "--cycles", "4", "--seed", "3"]


def _comparable(history: al.History) -> list[dict]:
    """Records without the wall-clock timings."""
    out = []
    for r in history.records:
        out.append({"cycle": r.cycle, "n_labeled": r.n_labeled, "interactions": r.interactions, "cost": r.cost, "metrics": r.metrics, "selected": r.selected})
    return out


def _cli(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "activelearn.cli", "run", *args, "--no-progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_sigkill_mid_cycle_then_resume_equals_uninterrupted_run(tmp_path: Path) -> None:
    epochs = 40  # ~0.1-0.3 s of training per cycle: the kill lands inside the next cycle
    out = tmp_path / "run"
    proc = _cli([*CLI_ARGS, "--epochs", str(epochs), "--out", str(out)])
    history_file = out / "history.json"
    deadline = time.monotonic() + 120
    killed_after = None
    while time.monotonic() < deadline and proc.poll() is None:
        if history_file.exists():
            n_done = len(json.loads(history_file.read_text())["records"])
            if n_done >= 1:  # cycle >= 1 checkpointed; the process is now training the next cycle
                os.kill(proc.pid, signal.SIGKILL)
                killed_after = n_done
                break
        time.sleep(0.01)
    proc.wait()
    assert killed_after is not None and proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    state = load_checkpoint(out)
    assert len(state["history"]["records"]) < 4  # really interrupted

    resumed = _cli(["--resume", str(out)])
    _stdout, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr.decode()

    # the same run, uninterrupted, in this process
    ref_dir = tmp_path / "ref"
    from activelearn.cli import _kwargs, build_parser

    ref_args = build_parser().parse_args(["run", *CLI_ARGS, "--epochs", str(epochs), "--no-progress"])
    ref = make_loop("digits", "entropy", seed=3, out_dir=ref_dir, **_kwargs(ref_args))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the subprocesses (OMP_NUM_THREADS=1): float sums depend on the thread count
    try:
        ref_history = ref.run()
    finally:
        torch.set_num_threads(threads)

    final = al.History.load_json(out / "history.json")
    assert _comparable(final) == _comparable(ref_history)
    log = json.loads((out / "annotations.json").read_text())
    assert log == [a.to_dict() for a in ref.pools.log]
    # the oracle was asked about each sample at most once, over both processes
    asked = load_checkpoint(out)["oracle"]["asked"]
    assert len(asked) == len(set(asked)) == len(log) == 20 + 3 * 20


def test_resume_inside_a_cycle_neither_reselects_nor_reasks(tmp_path: Path) -> None:
    """Stop right after a selection is made (before the oracle answers) and right after it answers."""
    train = al.TrainConfig(epochs=3, batch_size=16, seed=0)

    class Stop(Exception):
        pass

    class FailingOracle(al.SimulatedOracle):
        fail_at: int | None = None

        def answer(self, query):
            if query.cycle == self.fail_at:
                raise Stop
            return super().answer(query)

    def build(out):
        bundle = al.datasets.digits()
        loop = make_loop(bundle, "margin", initial=15, budget=10, cycles=3, seed=1, train=train, progress=False, out_dir=out)
        fo = FailingOracle(bundle.train_y, num_classes=10)
        loop.oracle = fo
        return loop, fo

    ref, _ = build(tmp_path / "ref")
    ref_history = ref.run()

    loop, oracle = build(tmp_path / "a")
    oracle.fail_at = 2  # cycle 1's selection is made and checkpointed, then the oracle fails
    with pytest.raises(Stop):
        loop.run()
    assert load_checkpoint(tmp_path / "a")["stage"] == "selected"
    again, oracle2 = build(tmp_path / "a")
    again.restore()
    calls = []
    again.strategy.select = lambda *a, **k: calls.append(1)  # must not be called: cycle 1's selection is saved
    append = again.history.append

    def crash_after_answers(record):  # a crash between the answers and the end of the cycle
        raise Stop

    again.history.append = crash_after_answers
    with pytest.raises(Stop):
        again.run()
    assert calls == []
    assert again.pools.n_labeled == 35
    assert oracle2.asked == ref.oracle.asked[:35]  # the saved selection asked once; earlier asks restored
    state = load_checkpoint(tmp_path / "a")
    assert state["stage"] == "answered" and state["pending"]["answered"]
    del append

    loop3, oracle3 = build(tmp_path / "a")
    loop3.restore()
    loop3.strategy.select = lambda *a, **k: calls.append(1)
    h = loop3.run()
    assert calls == []
    assert oracle3.asked == ref.oracle.asked  # nothing asked again
    assert _comparable(h) == _comparable(ref_history)
    assert loop3.pools.log == ref.pools.log


def test_resume_restores_model_optimizer_and_extension_states(tmp_path: Path) -> None:
    from activelearn.model import ModelExtension

    class Aux(ModelExtension):
        name = "aux"
        provides = ("aux_score",)

        def build(self, embedding_dim, stage_shapes, num_classes):
            self.lin = torch.nn.Linear(embedding_dim, 1)

        def training_loss(self, out, targets, progress):
            return self.lin(out.embeddings).pow(2).mean() * 0.01

        def infer(self, out):
            return {"aux_score": self.lin(out.embeddings)[:, 0]}

    train = al.TrainConfig(epochs=2, batch_size=16, from_scratch=False)
    loop = make_loop("digits", "entropy", initial=10, budget=5, cycles=2, seed=0, train=train, progress=False, out_dir=tmp_path, extensions=[Aux()])
    loop.run()
    other = make_loop("digits", "entropy", initial=10, budget=5, cycles=2, seed=0, train=train, progress=False, extensions=[Aux()])
    other.restore(tmp_path)
    for k, v in loop.model.state_dict().items():
        torch.testing.assert_close(other.model.state_dict()[k], v)
    assert "extensions.aux.lin.weight" in other.model.state_dict()
    s1, s2 = loop.trainer.optimizer.state_dict(), other.trainer.optimizer.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for k in s1["state"]:
        torch.testing.assert_close(s1["state"][k]["exp_avg"], s2["state"][k]["exp_avg"])
    assert other.pools.log == loop.pools.log
    assert len(other.history) == 2


def test_rng_states_round_trip() -> None:
    import random

    state = rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    torch.testing.assert_close(a[0], b[0])
    assert np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_atomic_write_leaves_old_file_when_the_write_fails(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "f.json"
    atomic_write_text(path, "old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"


def test_restore_refuses_a_checkpoint_of_another_run(tmp_path: Path) -> None:
    train = al.TrainConfig(epochs=1)
    make_loop("digits", "entropy", initial=10, budget=5, cycles=2, seed=0, train=train, progress=False, out_dir=tmp_path).run()
    other = make_loop("digits", "margin", initial=10, budget=7, cycles=2, seed=0, train=train, progress=False)
    with pytest.raises(CheckpointError, match=r"different run \(budget: saved 5, this loop 7; .*strategy: saved 'entropy', this loop 'margin'"):
        other.restore(tmp_path)
    assert other.pools.n_labeled == 0  # nothing changed


def test_resume_without_a_checkpoint_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"no checkpoint at .*checkpoint\.pt"):
        resume(tmp_path)


def test_damaged_checkpoint_is_refused(tmp_path: Path) -> None:
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        resume(tmp_path)


def test_deprecated_activeloop_resume_still_finishes_a_run(tmp_path: Path) -> None:
    train = al.TrainConfig(epochs=1)
    ref = make_loop("digits", "entropy", initial=10, budget=5, cycles=2, seed=0, train=train, progress=False)
    ref_history = ref.run()
    loop = make_loop("digits", "entropy", initial=10, budget=5, cycles=2, seed=0, train=train, progress=False, out_dir=tmp_path)
    loop.trainer.fit = _fail_at_cycle(loop.trainer.fit, 1)
    with pytest.raises(RuntimeError, match="stop"):
        loop.run()
    with pytest.warns(DeprecationWarning, match="experiment.resume"):
        again = al.ActiveLoop.resume(tmp_path, progress=False)
    assert _comparable(again.run()) == _comparable(ref_history)


def _fail_at_cycle(fit, at: int):
    def failing(model, pools, *, cycle: int = 0):
        if cycle == at:
            raise RuntimeError("stop")
        return fit(model, pools, cycle=cycle)

    return failing


def test_engine_modules_import_no_application_module() -> None:
    """loop, trainer and checkpoint never import experiment, cli or datasets, not even inside a function."""
    import ast

    banned = {"experiment", "cli", "datasets"}
    for mod in ("loop", "trainer", "checkpoint", "callbacks", "selection", "model", "pools", "oracle", "history"):
        tree = ast.parse((Path(SRC) / "activelearn" / f"{mod}.py").read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [a.name for a in node.names if not node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                assert not banned & set(name.replace("activelearn.", "").split(".")), f"{mod}.py imports {name}"


def _as_format_1(state: dict) -> dict:
    """The layout activelearn 0.1 wrote (format 1), rebuilt from a format-2 state."""
    old = {k: v for k, v in state.items() if k not in ("model", "trainer", "strategy", "pending")}
    old.update(format=1, model=state["model"]["weights"], optimizer=state["trainer"]["optimizer"],
               model_initial={"backbone": state["model"]["initial"], "extensions": state["model"]["extensions_initial"]})
    p = state["pending"]
    old["pending"] = None if p is None else {"record": {**p["record"], "extra": {k: v for k, v in p["record"]["extra"].items() if k != "select_calls"}}, "answered": p["answered"]}
    return old


def test_a_format_1_checkpoint_still_resumes_with_a_warning(tmp_path: Path) -> None:
    """Stopped while the oracle is asked (stage "selected"): format 1 re-asks the unanswered picks, selects nothing again."""
    from activelearn.checkpoint import checkpoint_path

    train = al.TrainConfig(epochs=2, batch_size=16, seed=0)
    kw = dict(initial=15, budget=10, cycles=3, seed=1, train=train, progress=False)
    ref = make_loop("digits", "margin", **kw)
    ref.run()
    loop = make_loop("digits", "margin", out_dir=tmp_path, **kw)
    answer = loop.oracle.answer

    def failing(query):
        if query.cycle == 2:
            raise RuntimeError("stop")
        return answer(query)

    loop.oracle.answer = failing
    with pytest.raises(RuntimeError, match="stop"):
        loop.run()
    state = load_checkpoint(tmp_path)
    assert state["stage"] == "selected"
    torch.save(_as_format_1(state), checkpoint_path(tmp_path))
    with pytest.warns(UserWarning, match="format-1 checkpoint"):
        again = make_loop("digits", "margin", out_dir=tmp_path, **kw).restore()
    again.strategy.select = lambda *a, **k: pytest.fail("the saved selection must not be made again")
    assert _comparable(again.run()) == _comparable(ref.history)
    assert again.oracle.asked == ref.oracle.asked
