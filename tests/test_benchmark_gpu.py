"""benchmarks/gpu.py: its CPU dry run (tiny sizes) writes every case; without CUDA the real run skips."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"


def _load():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dry_run_writes_every_case(tmp_path: Path) -> None:
    mod = _load()
    out = tmp_path / "gpu.md"
    assert mod.main(["--dry-run", "--out", str(out)]) == 0
    text = out.read_text()
    assert "dry run" in text
    for case in ("kcenter_plain", "kcenter_auto", "kcenter16_plain", "lsh", "dacs", "bald", "badge", "kmeans_torch", "kmeans_sklearn"):
        assert f"| {case} |" in text
    assert "DACS / plain 16-d k-center" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA path")
def test_without_cuda_skips_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gpu.md"
    assert _load().main(["--out", str(out)]) == 0
    assert not out.exists() and "skipped" in capsys.readouterr().out
