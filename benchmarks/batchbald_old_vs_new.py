"""BatchBALD greedy before / after the incremental rewrite, same data, same run (CPU seconds).

The old greedy is read from ``git show <rev>:src/activelearn/strategies/bald.py``
(third argument, default ``main`` at the time of writing: it recomputed the
configurations of all picked rows at every step and scored every candidate).
Synthetic ``N x 20 x 10`` MC log-probabilities, ``n_configs = 10,000``.

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/batchbald_old_vs_new.py 500 30
"""
import subprocess
import sys
import time
import types
from pathlib import Path

import torch
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'src'))
OLD_REV = sys.argv[3] if len(sys.argv) > 3 else 'main'
import activelearn.strategies.bald  # noqa: F401 (registers the package)
src = subprocess.run(["git", "show", f"{OLD_REV}:src/activelearn/strategies/bald.py"], capture_output=True, text=True, check=True, cwd=ROOT).stdout.replace('from ..mc_dropout', 'from activelearn.mc_dropout').replace('from .base', 'from activelearn.strategies.base').replace('from .registry import register', 'register = lambda name: (lambda cls: cls)')
old = types.ModuleType('old_bald'); old.__dict__['__name__'] = 'old_bald'; exec(compile(src, 'old_bald', 'exec'), old.__dict__)
from activelearn.ops.batchbald import batchbald_select as new
torch.set_num_threads(1)
n, b = int(sys.argv[1]), int(sys.argv[2])
g = torch.Generator().manual_seed(0)
lp = torch.log_softmax(torch.randn(n, 1, 10, generator=g, dtype=torch.float64) * 4 + torch.randn(n, 20, 10, generator=g, dtype=torch.float64) * 1.5, -1)
for name, fn, kw in [("new", new, {}), ("new resample", new, {"resample": True}), ("old", old.batchbald_select, {})]:
    c0, t0 = time.process_time(), time.perf_counter()
    p = fn(lp, b, 10_000, generator=torch.Generator().manual_seed(1), **kw)
    print(name, "cpu", round(time.process_time() - c0, 2), "wall", round(time.perf_counter() - t0, 2), p[:8].tolist(), flush=True)
