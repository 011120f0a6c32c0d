"""Reliability battery, command line and faults: exit code 2 and no traceback for bad input,
disk full and read-only output, corrupted and foreign checkpoints, Ctrl-C, concurrent writers.

The command runs in-process through :func:`activelearn.cli.main` (fast); a
few cases start a real process (Ctrl-C and concurrent writers, marked slow).
Every case passes; a known gap would be marked ``xfail(strict=True)`` with its reason.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

import activelearn as al
from activelearn import checkpoint as ckpt
from activelearn.cli import main
from activelearn.exceptions import ActiveLearnError, CheckpointError, OutputError
from activelearn.experiment import resume
from activelearn.file_oracle import FileOracle

from conftest import blobs

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--epochs", "1", "--cycles", "1", "--no-progress", "--initial", "10", "--budget", "5"]
RUN = ["run", "--strategy", "random", *FAST]
COMPARE = ["compare", "--epochs", "1", "--cycles", "1", "--no-progress", "--initial", "10", "--budget", "5"]
HARDEN: tuple[Any, ...] = ()  # the s3-harden cases: landed
LOCK: tuple[Any, ...] = ()  # the output lock: landed


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[Any, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refuses with exit 2 and a usage line
        code = exc.code
    return code, capsys.readouterr().err


def _plugin(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# (id, argv (tmp_path -> list), fragment of stderr, marks)
CLI_CASES: list[Any] = [
    ("unknown-strategy", lambda t: ["run", "--strategy", "entropie", *FAST], "activelearn: error: unknown strategy 'entropie'; did you mean 'entropy'"),
    ("budget-negative", lambda t: [*RUN, "--budget", "-3"], "argument --budget: must be a positive integer, got '-3'"),
    ("initial-negative", lambda t: [*RUN, "--initial", "-1"], "argument --initial: must be a non-negative integer, got '-1'"),
    ("initial-whole-pool", lambda t: [*RUN, "--initial", "100000"], "activelearn: error: initial=100000 would label the whole pool of 1437; use fewer"),
    ("epochs-zero", lambda t: [*RUN, "--epochs", "0"], "argument --epochs: must be a positive integer, got '0'"),
    ("noise-rate-2", lambda t: [*RUN, "--noise-rate", "2"], "activelearn: error: noise_rate must be a number in [0.0, 1.0], got 2.0"),
    ("noise-rate-nan", lambda t: [*RUN, "--noise-rate", "nan"], "activelearn: error: noise_rate must be a number in [0.0, 1.0], got nan"),
    ("device-tpu", lambda t: [*RUN, "--device", "tpu"], "activelearn: error: device must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'"),
    ("backbone", lambda t: [*RUN, "--backbone", "transformerxl"], "activelearn: error: unknown backbone 'transformerxl'. Available: ['mlp', 'cnn', 'resnet18']"),
    ("dataset", lambda t: [*RUN, "--dataset", "mnsit"], "activelearn: error: no preset for dataset 'mnsit'"),
    ("param-unknown", lambda t: [*RUN, "--param", "zzz=1"], "activelearn: error: strategy 'random' got unknown parameter(s) ['zzz']"),
    ("param-empty-key", lambda t: [*RUN, "--param", "=3"], "activelearn: error: strategy 'random' got unknown parameter(s) ['']"),
    ("seed-negative", lambda t: [*RUN, "--seed", "-1"], "argument --seed: must be a non-negative integer, got '-1'"),
    ("resume-missing", lambda t: ["run", "--resume", str(t / "nothing")], "activelearn: error: no checkpoint at"),
    ("resume-foreign-file", lambda t: ["run", "--resume", _plugin(t, "notes.txt", "hello")], "--resume expects a run's folder (or its checkpoint.pt), got the file"),
    ("oracle-timeout-negative", lambda t: [*RUN, "--oracle", "file", "--oracle-timeout", "-1", "--out", str(t / "o")], "activelearn: error: timeout must be a finite number >= 0, got -1.0"),
    ("plugin-missing", lambda t: [*RUN, "--plugin", str(t / "nope.py")], "no such file (pass a .py file or an importable module name)"),
    ("list-plugin-missing", lambda t: ["list", "--plugin", str(t / "nope.py")], "no such file"),
    ("compare-typo-later", lambda t: [*COMPARE, "--strategies", "random,entropie", "--out", str(t / "c")], "activelearn: error: unknown strategy 'entropie'"),
    ("compare-param", lambda t: [*COMPARE, "--strategies", "random,entropy", "--param", "subset=ten"], "strategy 'random' got unknown parameter(s) ['subset']"),
    ("compare-seed-negative", lambda t: [*COMPARE, "--strategies", "random", "--seeds", "-1"], "--seeds expects comma-separated non-negative integers such as 0,1,2, got '-1'"),
    ("argparse-budget-text", lambda t: [*RUN, "--budget", "abc"], "argument --budget: must be an integer, got 'abc'"),
    ("argparse-epochs-float", lambda t: [*RUN, "--epochs", "1.5"], "argument --epochs: must be an integer, got '1.5'"),
    ("argparse-seed-text", lambda t: [*RUN, "--seed", "x"], "argument --seed: must be an integer, got 'x'"),
    ("argparse-noise-text", lambda t: [*RUN, "--noise-rate", "lots"], "argument --noise-rate: invalid float value: 'lots'"),
    ("argparse-oracle", lambda t: [*RUN, "--oracle", "human"], "argument --oracle: invalid choice: 'human'"),
    ("argparse-unknown-option", lambda t: [*RUN, "--budgett", "3"], "unrecognized arguments: --budgett 3"),
    ("argparse-no-command", lambda t: [], "the following arguments are required: command"),
    ("argparse-compare-no-strategies", lambda t: ["compare"], "the following arguments are required: --strategies"),
    pytest.param("seeds-text", lambda t: [*COMPARE, "--strategies", "random", "--seeds", "0,a"], "seeds", marks=HARDEN, id="seeds-text"),
    pytest.param("seeds-empty", lambda t: [*COMPARE, "--strategies", "random", "--seeds", ","], "seeds", marks=HARDEN, id="seeds-empty"),
    pytest.param("strategies-empty", lambda t: [*COMPARE, "--strategies", ","], "strateg", marks=HARDEN, id="strategies-empty"),
    pytest.param("budget-zero", lambda t: [*RUN, "--budget", "0"], "budget", marks=HARDEN, id="budget-zero"),
    pytest.param("cycles-zero", lambda t: [*RUN, "--cycles", "0"], "cycles", marks=HARDEN, id="cycles-zero"),
    pytest.param("out-is-a-file", lambda t: [*RUN, "--out", _plugin(t, "taken", "x")], "taken", marks=HARDEN, id="out-is-a-file"),
    pytest.param("plugin-syntax-error", lambda t: [*RUN, "--plugin", _plugin(t, "syn.py", "def f(:\n")], "syn.py", marks=HARDEN, id="plugin-syntax-error"),
    pytest.param("plugin-import-error", lambda t: [*RUN, "--plugin", _plugin(t, "imp.py", "import no_such_module_xyz\n")], "no_such_module_xyz", marks=HARDEN, id="plugin-import-error"),
    pytest.param("plugin-raises", lambda t: [*RUN, "--plugin", _plugin(t, "boom.py", "raise RuntimeError('boom')\n")], "boom", marks=HARDEN, id="plugin-raises"),
    pytest.param("plugin-module-missing", lambda t: [*RUN, "--plugin", "no_such_module_abc"], "no_such_module_abc", marks=HARDEN, id="plugin-module-missing"),
]


def _params(cases: list[Any]) -> list[Any]:
    """Table rows as pytest params: a plain ``(id, *values)`` tuple, or a ``pytest.param(id, *values)`` carrying marks."""
    return [pytest.param(*c.values[1:], marks=c.marks, id=c.id) if hasattr(c, "marks") else pytest.param(*c[1:], id=c[0]) for c in cases]


@pytest.mark.parametrize("argv, fragment", _params(CLI_CASES))
def test_cli_bad_input_exits_2_without_traceback(argv: Any, fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _cli(argv(tmp_path), capsys)
    assert code == 2, err[-2000:]
    assert "Traceback" not in err
    assert fragment in err


def test_compare_typo_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = _cli([*COMPARE, "--strategies", "random,entropie", "--out", str(tmp_path / "c")], capsys)
    assert code == 2 and not (tmp_path / "c").exists()


def test_cli_in_a_real_process_exits_2_without_traceback(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "activelearn.cli", "run", "--strategy", "nope"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "activelearn: error: unknown strategy 'nope'" in r.stderr


# ------------------------------------------------------- disk full, read-only
def _writer_failing(code: int):
    def fail(path: Any, data: bytes) -> Path:
        raise OSError(code, os.strerror(code), str(path))
    return fail


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES], ids=["disk-full", "read-only", "no-permission"])
def test_file_oracle_cannot_write_its_query(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    monkeypatch.setattr(ckpt, "atomic_write_bytes", _writer_failing(code))
    with pytest.raises(OutputError, match=f"cannot write the query .*: {os.strerror(code)}; free space or make"):
        FileOracle(tmp_path, num_classes=3).answer(al.Query([1, 2], cycle=0))


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["disk-full", "read-only"])
def test_label_studio_cannot_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    from activelearn import labelstudio

    query = tmp_path / "query_c000-abcdef.json"
    query.write_text(json.dumps({"cycle": 0, "indices": [1, 2], "answers_json": "answers_c000-abcdef.json"}))
    monkeypatch.setattr(ckpt, "atomic_write_bytes", _writer_failing(code))
    with pytest.raises(OutputError, match=f"cannot write .*labelstudio.json: {os.strerror(code)}"):
        labelstudio.export_tasks(query)


@pytest.mark.parametrize("code", [
    pytest.param(errno.ENOSPC, marks=HARDEN, id="disk-full"),
    pytest.param(errno.EROFS, marks=HARDEN, id="read-only"),
    pytest.param(errno.EACCES, marks=HARDEN, id="no-permission"),
])
def test_cli_output_cannot_be_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], code: int) -> None:
    monkeypatch.setattr(ckpt, "atomic_write_bytes", _writer_failing(code))
    rc, err = _cli([*RUN, "--out", str(tmp_path / "out")], capsys)
    assert rc == 2 and "Traceback" not in err
    assert os.strerror(code) in err


def test_api_checkpoint_write_failure_is_a_library_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(fd: int) -> None:  # the disk fills while the checkpoint is flushed
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(ActiveLearnError, match="No space left on device"):
        _tiny_loop(tmp_path / "out").run()


@pytest.mark.skipif(os.geteuid() == 0, reason="running as root: chmod does not stop root from writing (the monkeypatched EROFS/EACCES cases cover it)")
def test_cli_read_only_output_folder_chmod(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tmp_path.chmod(0o500)
    try:
        rc, err = _cli([*RUN, "--out", str(tmp_path / "out")], capsys)
    finally:
        tmp_path.chmod(0o700)
    assert rc == 2 and "Traceback" not in err and "Permission denied" in err


# ------------------------------------------------ corrupted and foreign checkpoints
def _tiny_loop(out: Path | None) -> al.ActiveLoop:
    x, y = blobs(40)
    model = al.ALModel(torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)), num_classes=3, device="cpu")
    return al.ActiveLoop(model, al.strategies.get("random"), al.SimulatedOracle(y, num_classes=3), al.Pools(x, num_classes=3), budget=5, cycles=2,
                         initial=6, progress=False, out_dir=out, trainer=al.Trainer(al.TrainConfig(epochs=1, batch_size=8)))


@pytest.fixture(scope="module")
def real_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("real")
    _tiny_loop(out).run()
    return ckpt.checkpoint_path(out).read_bytes()


class _RunsCode:
    """Unpickling this object would create a marker file: loading must never do it."""

    marker = ""

    def __reduce__(self) -> Any:
        return (Path.touch, (Path(self.marker),))


def _evil(marker: Path, *, with_torch: bool) -> bytes:
    obj = _RunsCode()
    obj.marker = str(marker)
    _RunsCode.marker = str(marker)
    if not with_torch:
        return pickle.dumps({"format": 2, "payload": obj})
    import io

    buf = io.BytesIO()
    torch.save({"format": 2, "payload": obj}, buf)
    return buf.getvalue()


def _torch_bytes(obj: Any) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


# (id, bytes of checkpoint.pt given the real one and a marker path, fragment)
CHECKPOINTS: list[Any] = [
    ("truncated", lambda real, m: real[: len(real) // 2], "cannot read checkpoint"),
    ("truncated-tail", lambda real, m: real[:-100], "cannot read checkpoint"),
    ("empty", lambda real, m: b"", "cannot read checkpoint"),
    ("random-bytes", lambda real, m: os.urandom(4096), "cannot read checkpoint"),
    ("json-text", lambda real, m: b'{"format": 2}', "cannot read checkpoint"),
    ("pickle-runs-code", lambda real, m: _evil(m, with_torch=False), "cannot read checkpoint"),
    ("torch-pickle-runs-code", lambda real, m: _evil(m, with_torch=True), "cannot read checkpoint"),
    ("a-tensor", lambda real, m: _torch_bytes(torch.zeros(3)), "is not an activelearn checkpoint of format"),
    ("dict-without-format", lambda real, m: _torch_bytes({"weights": torch.zeros(3)}), "is not an activelearn checkpoint of format"),
    ("future-format", lambda real, m: _torch_bytes({"format": 99}), "has checkpoint format 99; this version of activelearn reads formats 1 and 2"),
    ("format-2-without-recipe", lambda real, m: _torch_bytes({"format": 2}), "has no recipe (the loop was built by hand)"),
]


@pytest.mark.parametrize("make, fragment", _params(CHECKPOINTS))
def test_corrupted_or_foreign_checkpoint_is_refused_without_running_code(make: Any, fragment: str, real_checkpoint: bytes, tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    out = tmp_path / "run"
    out.mkdir()
    ckpt.checkpoint_path(out).write_bytes(make(real_checkpoint, marker))
    with pytest.raises(CheckpointError, match=re.escape(fragment)):
        resume(out)
    assert not marker.exists(), "loading a checkpoint executed code"


@pytest.mark.parametrize("make", [
    pytest.param(lambda real, m: real[: len(real) // 3], id="truncated"),
    pytest.param(lambda real, m: _evil(m, with_torch=True), id="pickle-runs-code"),
])
def test_cli_resume_of_a_bad_checkpoint_exits_2(make: Any, real_checkpoint: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "code-ran"
    ckpt.checkpoint_path(tmp_path).write_bytes(make(real_checkpoint, marker))
    code, err = _cli(["run", "--resume", str(tmp_path)], capsys)
    assert code == 2 and "Traceback" not in err and "cannot read checkpoint" in err
    assert not marker.exists()


def _tampered(change: Any) -> Any:
    def make(real: bytes) -> bytes:
        import io

        state = torch.load(io.BytesIO(real), weights_only=True)
        change(state)
        return _torch_bytes(state)
    return make


def _damage_log(state: dict[str, Any]) -> None:
    state["pools"]["log"][0]["bad"] = 1


def _log_out_of_range(state: dict[str, Any]) -> None:
    state["pools"]["log"][0]["index"] = 99


ENGINE: tuple[Any, ...] = ()  # every part is checked before loading: landed
STATES: list[Any] = [
    ("pools-log-damaged", _tampered(_damage_log), "the saved pools are damaged (TypeError"),
    ("pools-index-out-of-range", _tampered(_log_out_of_range), "the saved pools' log names indices outside [0, 40), e.g. [99]"),
    pytest.param("no-history", _tampered(lambda s: s.pop("history")), "history", marks=ENGINE, id="no-history"),
    pytest.param("no-pools", _tampered(lambda s: s.pop("pools")), "pools", marks=ENGINE, id="no-pools"),
    pytest.param("no-identity", _tampered(lambda s: s.pop("identity")), "identity", marks=ENGINE, id="no-identity"),
]


@pytest.mark.parametrize("make, fragment", _params(STATES))
def test_damaged_checkpoint_state_changes_nothing(make: Any, fragment: str, real_checkpoint: bytes, tmp_path: Path) -> None:
    ckpt.checkpoint_path(tmp_path).write_bytes(make(real_checkpoint))
    loop = _tiny_loop(None)
    with pytest.raises(CheckpointError, match=re.escape(fragment)):
        loop.restore(tmp_path)
    assert loop.pools.log == () and loop.pools.n_labeled == 0 and len(loop.history) == 0


def test_checkpoint_path_that_is_a_folder_is_no_checkpoint(tmp_path: Path) -> None:
    ckpt.checkpoint_path(tmp_path).mkdir()
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        resume(tmp_path)


def test_restore_into_another_strategy_changes_nothing(real_checkpoint: bytes, tmp_path: Path) -> None:
    ckpt.checkpoint_path(tmp_path).write_bytes(real_checkpoint)
    loop = _tiny_loop(None)
    loop.strategy = al.strategies.get("entropy")
    with pytest.raises(CheckpointError, match="strategy: saved 'random', this loop 'entropy'"):
        loop.restore(tmp_path)
    assert loop.pools.log == () and len(loop.history) == 0


# ---------------------------------------------------------------------- signals
def _start(args: list[str]) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "activelearn.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists() and proc.poll() is None and time.monotonic() < end:
        time.sleep(0.05)


@pytest.mark.slow
def test_ctrl_c_exits_cleanly_and_the_run_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _start(["run", "--strategy", "random", "--epochs", "200", "--cycles", "20", "--no-progress", "--out", str(out)])
    _wait_for(ckpt.checkpoint_path(out), proc)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err[-3000:]
    assert proc.returncode in (2, 130), err[-2000:]
    ckpt.load_checkpoint(out)  # still readable: the interrupted run can be resumed


# ------------------------------------------------------------ concurrent writers
LOCK_REFUSAL = ("lock", "in use", "another run", "another process", "already running")


@pytest.mark.slow
def test_two_runs_into_one_out_the_second_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", "--strategy", "random", "--epochs", "3", "--cycles", "2", "--no-progress", "--out", str(out)]
    a, b = _start(args), _start(args)
    (_, err_a), (_, err_b) = a.communicate(timeout=300), b.communicate(timeout=300)
    assert sorted([a.returncode, b.returncode]) == [0, 2], (err_a[-1500:], err_b[-1500:])
    loser = err_a if a.returncode == 2 else err_b
    assert "Traceback" not in loser and any(w in loser.lower() for w in LOCK_REFUSAL)
    history = json.loads((out / "history.json").read_text())
    assert len(history["records"]) == 2


@pytest.mark.slow
def test_resume_while_the_run_is_writing_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = _start(["run", "--strategy", "random", "--epochs", "200", "--cycles", "20", "--no-progress", "--out", str(out)])
    try:
        _wait_for(ckpt.checkpoint_path(out), first)
        second = _start(["run", "--resume", str(out), "--no-progress"])
        try:  # a refusal comes at once; without a lock the second process would train on (stopped here)
            _, err = second.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            second.kill()
            second.communicate()
            pytest.fail("the second writer was not refused: it resumed the run while the first was writing")
        assert second.returncode == 2 and "Traceback" not in err
        assert any(w in err.lower() for w in LOCK_REFUSAL)
    finally:
        first.kill()
        first.communicate()


@pytest.mark.slow
def test_two_compares_into_one_out_the_second_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    args = ["compare", "--strategies", "random", "--epochs", "3", "--cycles", "2", "--no-progress", "--out", str(out)]
    a, b = _start(args), _start(args)
    (_, err_a), (_, err_b) = a.communicate(timeout=300), b.communicate(timeout=300)
    assert sorted([a.returncode, b.returncode]) == [0, 2], (err_a[-1500:], err_b[-1500:])
    loser = err_a if a.returncode == 2 else err_b
    assert any(w in loser.lower() for w in LOCK_REFUSAL)
    assert (out / "comparison.md").is_file()
