"""Run safety: plugins never run on a checkpoint's say-so, one writer per output folder, --resume options checked."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import activelearn as al
from activelearn.callbacks import Callback
from activelearn.checkpoint import load_checkpoint
from activelearn.cli import main
from activelearn.exceptions import InvalidParameterError, OutputLockedError, UnknownStrategyError
from activelearn.experiment import compare, loop_from_recipe, make_loop, resume, run_experiment
from activelearn.outlock import LOCK_NAME, output_lock
from activelearn.strategies.registry import load_plugins, plugin_reference

SRC = str(Path(__file__).resolve().parents[1] / "src")
RUN = ["--dataset", "digits", "--initial", "10", "--budget", "5", "--cycles", "3", "--epochs", "1", "--no-progress"]
API = dict(initial=10, budget=5, cycles=3, train=al.TrainConfig(epochs=1), progress=False)
ENV = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}

PLUGIN = '''
from pathlib import Path
Path(__file__).with_suffix(".marker").write_text("imported")
import activelearn as al
from activelearn.strategies.baselines import RandomSampling


@al.strategies.register("{name}")
class MarkerRandom(RandomSampling):
    """Random sampling, registered by a plugin that leaves a marker file when imported."""
'''


def _plugin(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(PLUGIN.format(name=name))
    return path


class _Crash(Callback):
    """Stops the run (as a kill would) when cycle ``at`` starts: the checkpoint then holds cycles 0..at-1."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_cycle_start(self, loop, cycle: int) -> None:
        if cycle == self.at:
            raise RuntimeError("simulated crash")


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "activelearn.cli", *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)


# ------------------------------------------------------------------ plugins
def test_resume_never_imports_the_checkpoint_s_plugin_without_trust_plugins(tmp_path: Path) -> None:
    """Acceptance: a recipe naming a marker-writing plugin is not imported by --resume; --trust-plugins imports it."""
    plugin = _plugin(tmp_path / "plugins", "marker_strategy_a")
    marker = plugin.with_suffix(".marker")
    out = tmp_path / "out"
    loop = make_loop("digits", "random", out_dir=out, **API)
    loop.recipe["plugins"] = [str(plugin)]  # what `run --plugin FILE` records
    loop.callbacks.append(_Crash(1))
    with pytest.raises(RuntimeError, match="simulated crash"):
        loop.run()
    assert not marker.exists()

    assert main(["run", "--resume", str(out), "--no-progress"]) == 0  # finishes; the file never ran
    assert not marker.exists()
    assert len(al.History.load_json(out / "history.json")) == 3
    assert load_checkpoint(out)["recipe"]["plugins"] == [str(plugin)]  # still recorded

    assert main(["run", "--resume", str(out), "--trust-plugins", "--no-progress"]) == 0  # explicit opt-in: imported
    assert marker.read_text() == "imported"


@pytest.mark.slow
def test_a_fresh_process_resuming_a_plugin_run_needs_plugin_or_trust(tmp_path: Path) -> None:
    """The user's path: `run --plugin` in one process, `--resume` in another (exit 2 and a hint, or --trust-plugins)."""
    plugin = _plugin(tmp_path / "plugins", "marker_strategy_d")
    marker = plugin.with_suffix(".marker")
    out = tmp_path / "out"
    assert main(["run", "--plugin", str(plugin), "--strategy", "marker_strategy_d", *RUN, "--out", str(out)]) == 0
    assert marker.exists()  # named on the command line: imported
    marker.unlink()
    assert load_checkpoint(out)["recipe"]["plugins"] == [str(plugin.resolve())]

    refused = _cli(["run", "--resume", str(out), "--no-progress"], cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert "Traceback" not in refused.stderr
    assert "unknown strategy 'marker_strategy_d'" in refused.stderr and "--trust-plugins" in refused.stderr
    assert not marker.exists()

    trusted = _cli(["run", "--resume", str(out), "--trust-plugins", "--no-progress"], cwd=tmp_path)
    assert trusted.returncode == 0, trusted.stderr
    assert marker.read_text() == "imported"


def test_library_resume_imports_recipe_plugins_only_when_trusted(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path, "marker_strategy_b")
    marker = plugin.with_suffix(".marker")
    recipe = {"data": "digits", "strategy": "marker_strategy_b_unregistered", "plugins": [str(plugin)], **API}
    with pytest.raises(UnknownStrategyError, match=r"names the plugin\(s\) .*marker_strategy_b\.py.*trust_plugins=True"):
        loop_from_recipe(recipe)
    assert not marker.exists()
    with pytest.raises(UnknownStrategyError, match="marker_strategy_b_unregistered"):
        loop_from_recipe(recipe, trust_plugins=True)  # imported (the file registers another name)
    assert marker.exists()


def test_relative_plugin_path_is_stored_absolute_and_survives_two_crashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run crashes, is resumed, crashes again, and is resumed again from another folder."""
    work = tmp_path / "work"
    _plugin(work, "marker_strategy_c")
    monkeypatch.chdir(work)
    load_plugins(["marker_strategy_c.py"])
    out = tmp_path / "out"
    loop = make_loop("digits", "marker_strategy_c", out_dir=out, **API)
    loop.recipe["plugins"] = [plugin_reference("marker_strategy_c.py")]  # as `run --plugin marker_strategy_c.py` records it
    loop.callbacks.append(_Crash(1))
    with pytest.raises(RuntimeError, match="simulated crash"):
        loop.run()
    expected = [str((work / "marker_strategy_c.py").resolve())]
    assert load_checkpoint(out)["recipe"]["plugins"] == expected

    again = resume(out)
    again.callbacks.append(_Crash(2))
    with pytest.raises(RuntimeError, match="simulated crash"):
        again.run()
    state = load_checkpoint(out)
    assert state["recipe"]["plugins"] == expected  # still recorded after one resume
    assert len(state["history"]["records"]) == 2

    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match="'marker_strategy_c' was registered by"):  # imported again from its absolute path
        assert main(["run", "--resume", str(out), "--trust-plugins", "--no-progress"]) == 0
    assert len(al.History.load_json(out / "history.json")) == 3


def test_plugin_files_that_fail_to_import_are_library_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    syntax = tmp_path / "bad_syntax.py"
    syntax.write_text("def broken(:\n")
    missing = tmp_path / "bad_import.py"
    missing.write_text("import activelearn_no_such_module_xyz\n")
    raising = tmp_path / "bad_raise.py"
    raising.write_text("raise ValueError('plugin refuses')\n")
    with pytest.raises(InvalidParameterError, match=r"--plugin .*bad_syntax\.py' failed to import: SyntaxError"):
        load_plugins([str(syntax)])
    assert "activelearn_plugin_bad_syntax" not in sys.modules
    assert main(["list", "--plugin", str(missing)]) == 2
    assert "failed to import: ModuleNotFoundError: No module named 'activelearn_no_such_module_xyz'" in capsys.readouterr().err
    assert main(["run", "--plugin", str(raising), "--strategy", "random"]) == 2
    assert "failed to import: ValueError: plugin refuses" in capsys.readouterr().err
    assert main(["list", "--plugin", "activelearn_no_such_module_xyz"]) == 2
    assert "no such file or importable module" in capsys.readouterr().err


# --------------------------------------------------------------- --resume
def _unfinished_run(out: Path) -> None:
    loop = make_loop("digits", "random", out_dir=out, **API)
    loop.callbacks.append(_Crash(1))
    with pytest.raises(RuntimeError):
        loop.run()


def test_resume_refuses_a_changed_strategy_budget_or_seed_and_leaves_the_checkpoint_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    _unfinished_run(out)
    before = (out / "checkpoint.pt").read_bytes()
    assert main(["run", "--resume", str(out), "--strategy", "entropy", "--budget", "7"]) == 2
    err = capsys.readouterr().err
    assert "--strategy 'entropy' (the run has 'random'), --budget 7 (the run has 5) cannot change in a resumed run" in err
    assert main(["run", "--resume", str(out), "--seed", "0", "--budget", "5", "--seed", "1"]) == 2
    assert "--seed 1 (the run has 0)" in capsys.readouterr().err
    assert (out / "checkpoint.pt").read_bytes() == before


def test_resume_accepts_repeated_values_and_applies_more_cycles_and_another_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    _unfinished_run(out)
    code = main(["run", "--resume", str(out), "--strategy", "random", "--budget", "5", "--seed", "0", "--cycles", "4", "--device", "cpu", "--no-progress"])
    assert code == 0
    err = capsys.readouterr().err
    assert "activelearn: --resume: cycles changed from 3 to 4" in err
    assert "activelearn: --resume: device changed from None to 'cpu'" in err
    history = al.History.load_json(out / "history.json")
    assert [r.n_labeled for r in history.records] == [10, 15, 20, 25]
    state = load_checkpoint(out)
    assert state["identity"]["cycles"] == 4 and state["recipe"]["cycles"] == 4 and history.meta["cycles"] == 4


def test_resume_refuses_fewer_cycles_or_extending_a_finished_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    _unfinished_run(out)
    with pytest.raises(InvalidParameterError, match="started with 3 cycles; resuming cannot lower it to 2"):
        resume(out, cycles=2)
    done = tmp_path / "done"
    run_experiment("digits", "random", out_dir=done, **API)
    assert main(["run", "--resume", str(done), "--cycles", "5"]) == 2
    err = capsys.readouterr().err
    assert "finished its 3 cycles (the last one selects nothing), so it cannot be extended to 5" in err
    assert "changed from" not in err  # nothing was applied


# ------------------------------------------------------------------ locks
def test_second_writer_thread_is_refused_and_the_first_finishes_intact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    inside, release = threading.Event(), threading.Event()

    class Hold(Callback):
        def on_cycle_start(self, loop, cycle: int) -> None:
            if cycle == 1:
                inside.set()
                assert release.wait(60)

    first = make_loop("digits", "random", out_dir=out, **API)
    first.callbacks.append(Hold())
    result: dict[str, object] = {}
    worker = threading.Thread(target=lambda: result.setdefault("history", first.run()))
    worker.start()
    try:
        assert inside.wait(120)
        ckpt_before = (out / "checkpoint.pt").read_bytes()
        with pytest.raises(OutputLockedError, match=f"the output folder {out.resolve()} is in use: another thread"):
            run_experiment("digits", "entropy", out_dir=out, **API)
        with pytest.raises(OutputLockedError, match="is in use"):
            compare("digits", ["random"], out_dir=out, **API)
        assert main(["run", "--strategy", "entropy", *RUN, "--out", str(out)]) == 2
        assert f"{out} already holds the checkpoint of a run" in capsys.readouterr().err
        assert main(["compare", "--strategies", "entropy", *RUN, "--out", str(out)]) == 2
        assert f"the output folder {out.resolve()} is in use: another thread" in capsys.readouterr().err
        assert (out / "checkpoint.pt").read_bytes() == ckpt_before  # the refused writers wrote nothing
    finally:
        release.set()
        worker.join(120)
    history = result["history"]
    assert isinstance(history, al.History) and len(history) == 3
    saved = al.History.load_json(out / "history.json")
    assert saved.meta["strategy"] == "random" and [r.n_labeled for r in saved.records] == [10, 15, 20]
    assert load_checkpoint(out)["identity"]["strategy"] == "random"


def test_lock_is_reentrant_in_one_thread_and_free_after_release(tmp_path: Path) -> None:
    with output_lock(tmp_path):
        with output_lock(tmp_path / "."):  # the same folder, spelled differently
            pass
        holder = _lock_holder(tmp_path)  # still held by us after the inner release
        assert holder.wait(60) == 3
    assert _lock_holder(tmp_path).wait(60) == 0  # released
    assert (tmp_path / LOCK_NAME).read_text() != ""


LOCK_SCRIPT = """
import fcntl, os, sys, time
f = open(os.path.join(sys.argv[1], sys.argv[3]), "a+")
try:
    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    sys.exit(3)
f.seek(0); f.truncate(); f.write(str(os.getpid())); f.flush()
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _lock_holder(folder: Path, hold: float = 0.0) -> subprocess.Popen:
    """Another process taking the folder's OS lock as output_lock does (plain Python: no torch import, fast)."""
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-c", LOCK_SCRIPT, str(folder), str(hold), LOCK_NAME], stdout=subprocess.PIPE, text=True)


def test_another_process_holding_the_folder_refuses_the_cli_and_a_killed_holder_leaves_no_stale_lock(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    holder = _lock_holder(out, hold=600)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert main(["run", "--strategy", "random", *RUN, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"activelearn: error: the output folder {out.resolve()} is in use: process {holder.pid} is writing a run into it" in err
        assert not (out / "checkpoint.pt").exists()
    finally:
        holder.kill()  # SIGKILL: no cleanup runs in the holder
        holder.wait(60)
    assert main(["run", "--strategy", "random", *RUN, "--out", str(out)]) == 0
    assert len(al.History.load_json(out / "history.json")) == 3


@pytest.mark.slow
def test_two_cli_processes_started_together_on_one_out(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [sys.executable, "-m", "activelearn.cli", "run", "--strategy", "random", *RUN, "--epochs", "20", "--out", str(out)]
    procs = [subprocess.Popen(args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    errs = [e for _o, e in results]
    assert codes == [0, 2], errs
    loser = errs[[p.returncode for p in procs].index(2)]
    assert ("is in use: process" in loser) or ("already holds the checkpoint of a run" in loser), loser
    assert "Traceback" not in loser
    assert [r.n_labeled for r in al.History.load_json(out / "history.json").records] == [10, 15, 20]


def test_killed_writer_s_lock_file_does_not_block(tmp_path: Path) -> None:
    holder = _lock_holder(tmp_path, hold=600)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    holder.kill()
    holder.wait(60)
    time.sleep(0.1)
    assert (tmp_path / LOCK_NAME).exists()  # the file stays, nobody holds it
    with output_lock(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text() == str(os.getpid())


def test_no_folder_locks_nothing(tmp_path: Path) -> None:
    with output_lock(None):
        assert list(tmp_path.iterdir()) == []
