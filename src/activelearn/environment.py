"""What a run ran on: library versions, device, threads, git commit (recorded in ``History.meta``).

Results depend on these (the number of torch threads changes float sums, hence
picks; see docs/reliability.md), so every history records them.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["run_environment"]


@functools.lru_cache(maxsize=1)
def _git_commit() -> str | None:
    """The commit of the checkout the package runs from, or None (installed from a wheel, no git)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def run_environment(device: torch.device | str) -> dict[str, Any]:
    """Versions of activelearn, torch, numpy and Python, the device, torch's thread count and the git commit."""
    return {
        "activelearn": _version("activelearn"),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "git_commit": _git_commit(),
    }
