"""Bad input and a hostile environment end in the library's error and exit code 2 (or 130 for Ctrl-C), never a traceback."""

from __future__ import annotations

import errno
import inspect
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

import activelearn as al
from activelearn import configs
from activelearn.checkpoint import atomic_write_bytes, load_checkpoint, remove_stale_tmp
from activelearn.cli import _data_kwargs, _kwargs, build_parser, main
from activelearn.configs import preset, with_epochs
from activelearn.exceptions import DatasetNotFoundError, InvalidParameterError, OutputWriteError
from activelearn.experiment import compare, make_loop
from activelearn.outlock import output_lock
from activelearn.strategies.baselines import RandomSampling

SRC = str(Path(__file__).resolve().parents[1] / "src")
RUN = ["--dataset", "digits", "--initial", "10", "--budget", "5", "--cycles", "3", "--epochs", "1", "--no-progress"]
API = dict(initial=10, budget=5, cycles=3, train=al.TrainConfig(epochs=1), progress=False)


# ------------------------------------------------------------- bad numbers
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--budget", "0", "argument --budget: must be a positive integer, got '0'"),
        ("--budget", "-3", "argument --budget: must be a positive integer, got '-3'"),
        ("--cycles", "0", "argument --cycles: must be a positive integer, got '0'"),
        ("--cycles", "-1", "argument --cycles: must be a positive integer, got '-1'"),
        ("--epochs", "0", "argument --epochs: must be a positive integer, got '0'"),
        ("--initial", "-1", "argument --initial: must be a non-negative integer, got '-1'"),
        ("--seed", "-1", "argument --seed: must be a non-negative integer, got '-1'"),
        ("--budget", "ten", "argument --budget: must be an integer, got 'ten'"),
    ],
)
def test_cli_refuses_zero_negative_or_non_integer_sizes(option: str, value: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--strategy", "random", option, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(("key", "value", "message"), [
    ("budget", 0, "budget must be a positive int, got 0"),
    ("budget", -5, "budget must be a positive int, got -5"),
    ("cycles", 0, "cycles must be a positive int, got 0"),
    ("initial", -1, "initial must be a non-negative int, got -1"),
])
def test_make_loop_refuses_zero_sizes_instead_of_using_the_preset(key: str, value: int, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        make_loop("digits", "random", **{**API, key: value})


@pytest.mark.parametrize(("seeds", "message"), [
    ("a,b", "--seeds expects comma-separated non-negative integers such as 0,1,2, got 'a,b'"),
    ("", "--seeds expects comma-separated non-negative integers such as 0,1,2, got ''"),
    ("0,-1", "--seeds expects comma-separated non-negative integers such as 0,1,2, got '0,-1'"),
    ("1.5", "--seeds expects comma-separated non-negative integers such as 0,1,2, got '1.5'"),
    ("0,0", "seeds must not repeat (two runs would write to one folder), got [0, 0]"),
])
def test_cli_compare_refuses_bad_seeds(seeds: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "--strategies", "random", "--seeds", seeds, *RUN]) == 2
    err = capsys.readouterr().err
    assert f"activelearn: error: {message}" in err and "Traceback" not in err


@pytest.mark.parametrize(("names", "message"), [
    (",", "--strategies expects comma-separated strategy names such as random,entropy, got ','"),
    ("random,random", "strategy names must not repeat (two runs would write to one folder), got ['random', 'random']"),
    ("random,entropyy", "unknown strategy 'entropyy'"),
])
def test_cli_compare_refuses_bad_strategy_lists_before_running(names: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "--strategies", names, *RUN, "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "random").exists()


def test_compare_api_refuses_repeated_seeds_and_names() -> None:
    with pytest.raises(InvalidParameterError, match=r"seeds must not repeat .* got \[1, 1\]"):
        compare("digits", ["random"], seeds=[1, 1], **API)
    with pytest.raises(InvalidParameterError, match="strategy names must be a sequence, got the string 'random'"):
        compare("digits", "random", **API)  # type: ignore[arg-type]


def test_cli_compare_refuses_an_out_that_holds_a_comparison(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["compare", "--strategies", "random", "--seeds", "0", *RUN, "--out", str(out)]) == 0
    before = (out / "random" / "seed0" / "checkpoint.pt").read_bytes()
    assert main(["compare", "--strategies", "random", "--seeds", "0", *RUN, "--out", str(out)]) == 2
    assert f"{out} already holds results of a comparison" in capsys.readouterr().err
    assert (out / "random" / "seed0" / "checkpoint.pt").read_bytes() == before


def test_refused_input_creates_no_output_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--resume", str(tmp_path / "typo")]) == 2
    assert f"no checkpoint at {tmp_path / 'typo' / 'checkpoint.pt'}" in capsys.readouterr().err
    assert main(["run", "--strategy", "coreset", "--param", "metric=nope", *RUN, "--out", str(tmp_path / "run")]) == 2
    assert main(["compare", "--strategies", "coreset", "--param", "metric=nope", *RUN, "--out", str(tmp_path / "cmp")]) == 2
    assert main(["run", "--strategy", "random", "--dataset", "no_such_set", *RUN[2:], "--out", str(tmp_path / "ds")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    assert main(["run", "--resume", str(tmp_path / "notes.txt")]) == 2
    assert f"--resume expects a run's folder (or its checkpoint.pt), got the file {tmp_path / 'notes.txt'}" in capsys.readouterr().err


# --------------------------------------------------------- disk and signals
def _no_space(*_args: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_is_a_library_error_exit_2_and_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    monkeypatch.setattr(os, "fsync", _no_space)
    assert main(["run", "--strategy", "random", *RUN, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"activelearn: error: cannot write {out / 'checkpoint.pt'}: No space left on device; the previous file is unchanged" in err
    assert "Traceback" not in err
    assert not list(out.glob(".*.tmp")) and not (out / "checkpoint.pt").exists()


def test_atomic_write_that_fails_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "state.bin"
    atomic_write_bytes(target, b"old")
    monkeypatch.setattr(os, "fsync", _no_space)
    with pytest.raises(OutputWriteError, match="No space left on device") as exc:
        atomic_write_bytes(target, b"new")
    assert isinstance(exc.value, OSError)  # callers catching OSError still catch it
    monkeypatch.undo()
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["state.bin"]

    def interrupt(*_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["state.bin"]


@pytest.mark.skipif(not Path("/sys").is_dir() or (os.access("/sys", os.W_OK) and os.geteuid() != 0), reason="needs a read-only /sys (Linux)")
def test_read_only_output_folder_is_refused_before_any_work(capsys: pytest.CaptureFixture[str]) -> None:
    out = Path("/sys/activelearn_read_only_test")
    assert main(["run", "--strategy", "random", *RUN, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"activelearn: error: cannot write to the output folder {out}" in err and "choose a writable folder (--out)" in err
    assert "Traceback" not in err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_unwritable_output_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tmp_path.chmod(0o500)
    try:
        assert main(["run", "--strategy", "random", *RUN, "--out", str(tmp_path / "out")]) == 2
    finally:
        tmp_path.chmod(0o700)
    assert "cannot write to the output folder" in capsys.readouterr().err


@al.strategies.register("interrupting_random")
class InterruptingRandom(RandomSampling):
    """Random sampling that presses Ctrl-C in its second selection (while ``armed``)."""

    armed = True
    calls = 0

    def select(self, model, pools, budget):
        type(self).calls += 1
        if type(self).armed and type(self).calls == 2:
            raise KeyboardInterrupt
        return super().select(model, pools, budget)


def test_ctrl_c_exits_130_with_a_message_and_the_checkpoint_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    InterruptingRandom.armed, InterruptingRandom.calls = True, 0
    assert main(["run", "--strategy", "interrupting_random", *RUN, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert err.strip() == f"activelearn: interrupted; the checkpoint in {out} keeps the last completed step (continue with `activelearn run --resume {out}`)"
    state = load_checkpoint(out)
    assert state["stage"] == "cycle" and len(state["history"]["records"]) == 1
    assert not list(out.glob(".*.tmp"))
    InterruptingRandom.armed = False
    assert main(["run", "--resume", str(out), "--no-progress"]) == 0
    assert [r.n_labeled for r in al.History.load_json(out / "history.json").records] == [10, 15, 20]


@pytest.mark.slow
def test_sigint_to_a_cli_process_exits_130_without_traceback(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "activelearn.cli", "run", "--strategy", "random", *RUN, "--cycles", "50", "--epochs", "30", "--out", str(out)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (out / "history.json").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "activelearn: interrupted" in err and "Traceback" not in err
    assert load_checkpoint(out)["format"] == 2


# ------------------------------------------------------------ stale tmp files
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.skipif(os.name == "nt", reason="no signal-0 probe on Windows")
def test_stale_tmp_files_of_dead_processes_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    dead, alive, parent = _dead_pid(), os.getpid(), os.getppid()
    names = [f".checkpoint.pt.{dead}.tmp", f".annotations.json.{dead}.tmp", f".checkpoint.pt.{alive}.tmp",
             f".checkpoint.pt.{parent}.tmp", "checkpoint.pt.123.tmp", ".notes.tmp", "history.json.tmp"]
    for name in names:
        (tmp_path / name).write_bytes(b"partial")
    removed = remove_stale_tmp(tmp_path)
    assert sorted(p.name for p in removed) == sorted(names[:2])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:])


@pytest.mark.skipif(os.name == "nt", reason="no signal-0 probe on Windows")
def test_taking_the_output_lock_cleans_stale_tmp_files(tmp_path: Path) -> None:
    stale = tmp_path / f".checkpoint.pt.{_dead_pid()}.tmp"
    stale.write_bytes(b"partial")
    with output_lock(tmp_path):
        assert not stale.exists()


# --------------------------------------------------------------- --epochs
@pytest.mark.parametrize(("dataset", "epochs", "milestones"), [
    ("repeated_mnist", 50, (40,)),  # 160 of 200 -> 40 of 50: the drop stays at 80%
    ("cifar10", 10, (8,)),
    ("repeated_mnist", 1, (1,)),
    ("digits", 5, ()),  # no milestones: none added
])
def test_cli_epochs_rescale_the_lr_milestones(dataset: str, epochs: int, milestones: tuple[int, ...]) -> None:
    args = build_parser().parse_args(["run", "--dataset", dataset, "--epochs", str(epochs)])
    train = _kwargs(args)["config"].train
    assert train.epochs == epochs and train.milestones == milestones
    assert preset(dataset).train.epochs != epochs  # the preset itself is untouched


def test_epochs_reach_the_trainer_with_rescaled_milestones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    digits = preset("digits")  # 60 epochs; give it two milestones
    monkeypatch.setitem(configs.PRESETS, "digits", replace(digits, train=digits.train.replace(milestones=(30, 48))))
    assert main(["run", "--strategy", "random", *RUN[:-3], "--epochs", "5", "--no-progress", "--out", str(tmp_path)]) == 0
    meta = al.History.load_json(tmp_path / "history.json").meta["train_config"]
    assert meta["epochs"] == 5 and list(meta["milestones"]) == [2, 4]  # round(30/12), round(48/12)


def test_with_epochs_refuses_non_positive_epochs() -> None:
    with pytest.raises(InvalidParameterError, match="epochs must be a positive integer, got 0"):
        with_epochs(preset("cifar10"), 0)


# -------------------------------------------------------------- --download
@pytest.mark.parametrize("dataset", ["mnist", "repeated_mnist", "mix_mnist", "cifar10"])
def test_download_flag_reaches_loaders_that_download(dataset: str) -> None:
    args = build_parser().parse_args(["run", "--dataset", dataset, "--download", "--data-root", "/data"])
    assert _data_kwargs(args) == {"root": "/data", "download": True}
    assert "download" in inspect.signature(getattr(al.datasets, dataset)).parameters


def test_download_flag_is_ignored_with_a_note_for_built_in_data(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["compare", "--strategies", "random", "--dataset", "digits", "--download"])
    assert _kwargs(args)["data_kwargs"] == {}
    assert "activelearn: --download: digits has nothing to download" in capsys.readouterr().err


def test_failed_download_is_a_dataset_error_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import torchvision.datasets

    calls = []

    class NoInternet:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            calls.append((root, train, download))
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(torchvision.datasets, "MNIST", NoInternet)
    with pytest.raises(DatasetNotFoundError, match=r"downloading MNIST into .* failed"):
        al.datasets.load("mnist", root=str(tmp_path / "empty"), download=True)
    assert calls and calls[0][2] is True
    assert main(["run", "--strategy", "random", "--dataset", "mnist", "--data-root", str(tmp_path / "empty"), "--download", *RUN[2:]]) == 2
    err = capsys.readouterr().err
    assert "activelearn: error: downloading MNIST into" in err and "Traceback" not in err
