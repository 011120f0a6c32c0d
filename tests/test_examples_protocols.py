"""The example scripts' paper protocols agree with the numbers METHODS.md gives for each paper."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
METHODS = ROOT.parent / "shared" / "docs" / "METHODS.md"


def _load(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    nxt = text.find("\n### ", start + len(heading))
    return text[start : nxt if nxt > 0 else None]


def _number(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    assert m is not None, f"METHODS.md no longer says {pattern!r}"
    return float(m.group(1))


@pytest.fixture(scope="module")
def methods() -> str:
    if not METHODS.exists():
        pytest.skip("../shared/docs/METHODS.md not beside the checkout")
    return METHODS.read_text()


def test_cifar10_dacs_protocol_matches_methods(methods: str) -> None:
    sec = _section(methods, "### DACS (seed paper")
    proto = _load("cifar10").PROTOCOLS["dacs"]
    assert proto["lr"] == _number(r"SGD lr ([\d.]+)", sec)
    assert proto["momentum"] == _number(r"momentum ([\d.]+)", sec)
    assert proto["milestones"] == (int(_number(r"after epoch (\d+)", sec)),)
    assert proto["epochs"] == int(_number(r"(\d+) epochs", sec))
    assert proto["batch_size"] == int(_number(r"batch (\d+)", sec))
    assert proto["aux_head"] and "auxiliary head is attached to every method" in sec


def test_cifar10_ncenet_protocol_matches_methods(methods: str) -> None:
    sec = _section(methods, "### NCE-Net (Wan et al.")
    proto = _load("cifar10").PROTOCOLS["ncenet"]
    assert proto["momentum"] == _number(r"momentum ([\d.]+)", sec)
    assert proto["weight_decay"] == _number(r"weight decay ([\d.e-]+)", sec)
    assert proto["lr"] == _number(r"lr ([\d.]+)\s+then", sec)
    assert proto["milestones"] == (int(_number(r"after epoch (\d+)", sec)),)
    assert proto["epochs"] == int(_number(r"(\d+) epochs per cycle", sec))
    assert proto["batch_size"] == int(_number(r"batch (\d+)", sec))
    assert not proto["aux_head"]


def test_cifar10_training_config_follows_protocol_and_is_fp32_by_default() -> None:
    mod = _load("cifar10")
    import argparse

    args = argparse.Namespace(protocol="ncenet", epochs=200, weight_decay=None, amp=False, keep_training=False)
    c = mod.training(args)
    assert (c.momentum, c.weight_decay, c.lr, c.milestones, c.amp, c.from_scratch) == (0.9, 5e-4, 0.1, (160,), False, True)
    c = mod.training(argparse.Namespace(protocol="dacs", epochs=50, weight_decay=None, amp=True, keep_training=True))
    assert (c.momentum, c.milestones, c.amp, c.from_scratch) == (0.4, (40,), True, False)


def test_cifar10_paper_tables_are_the_published_rows(methods: str) -> None:
    paper = _load("cifar10").PAPER
    sec = _section(methods, "### DACS (seed paper")
    for label, key in (("Random", "paper: Random"), ("DACS", "paper: DACS"), ("CDAL", "paper: CDAL")):
        row = re.search(rf"- {label} +([\d. ]+)\n", sec)
        assert row is not None
        assert paper["dacs"][key] == [float(v) for v in row.group(1).split()]
    sec = _section(methods, "### NCE-Net (Wan et al.")
    row = re.search(r"- NCE Rejection +([\d. ]+)\n", sec)
    assert row is not None and paper["ncenet"]["paper: NCE Rejection"] == [float(v) for v in row.group(1).split()]


def test_dropout_option_for_every_strategy() -> None:
    mod = _load("cifar10")  # MC-dropout strategies get theirs from make_loop (tests/test_fair_compare.py)
    assert mod.backbone_for(0.0) is None
    assert mod.backbone_for(0.2) == "resnet18:dropout=0.2"


def test_rmnist_paper_rows_are_table_2(methods: str) -> None:
    paper = _load("rmnist").PAPER
    sec = _section(methods, "### DACS (seed paper")
    for label, key in (("LearnLoss", "paper: LearnLoss"), ("CDAL", "paper: CDAL"), ("NCE \\+ DACS", "paper: NCE + DACS")):
        row = re.search(rf"RMNIST.*?- {label} +([\d. ]+)\n", sec, re.S)
        assert row is not None
        assert paper[key] == [float(v) for v in row.group(1).split()]
