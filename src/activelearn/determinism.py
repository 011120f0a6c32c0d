"""Scoped deterministic execution.

What is deterministic in activelearn
------------------------------------
* Strategies draw randomness only from ``(seed, cycle, interactions)``
  (:meth:`~activelearn.strategies.Strategy.rng`), the initial set from the loop's
  seed, the trainer's shuffling/dropout/augmentation from a forked RNG seeded by
  ``(config.seed, cycle)``, and extensions are initialised under the model's seed.
* On CPU, PyTorch kernels are deterministic for a fixed thread count once
  :func:`torch.use_deterministic_algorithms` is on, so two runs with one seed
  give identical selections and histories (tested in ``tests/test_reliability.py``).
* On CUDA, :func:`deterministic_mode` also sets ``cudnn.deterministic`` and
  disables cuDNN autotuning; cuBLAS needs the environment variable
  ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (or ``:16:8``) set *before* CUDA starts,
  which this function cannot do for you (it warns when it is missing).  Ops
  without a deterministic CUDA kernel (e.g. ``index_add_`` on floats,
  some scatter/histogram ops) warn instead of failing (``warn_only=True``).
  Mixed precision (``TrainConfig.amp``) is deterministic given the above.
  Results are reproducible on the same GPU model, driver and library versions
  only; across GPUs or versions they differ in the last bits.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import Iterator

import torch

__all__ = ["deterministic_mode"]


@contextlib.contextmanager
def deterministic_mode(enabled: bool = True) -> Iterator[None]:
    """Turn on deterministic algorithms inside the block and restore the previous settings after.

    ``enabled=False`` leaves everything as it is (a no-op).
    """
    if not enabled:
        yield
        return
    prev_alg = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    prev_cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    if torch.cuda.is_available() and os.environ.get("CUBLAS_WORKSPACE_CONFIG") is None:
        warnings.warn(
            "deterministic=True on CUDA needs CUBLAS_WORKSPACE_CONFIG=:4096:8 in the environment before "
            "CUDA starts; without it cuBLAS matrix products may differ between runs",
            stacklevel=3,
        )
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev_alg, warn_only=prev_warn)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = prev_cudnn
