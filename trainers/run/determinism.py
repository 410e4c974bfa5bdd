"""``DETERMINISTIC True``: the same command gives the same numbers on CUDA too, at a cost in speed.

On the CPU a run is repeatable as it is (same command, same thread count: the same bits). On CUDA, cuDNN's
autotuner (``cudnn.benchmark``, on by default here for speed) and some kernels (atomic adds in backward passes,
cuBLAS's split reductions) may change the result's last bits from run to run. The option turns the autotuner
off, asks cuDNN for deterministic algorithms, sets ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` and calls
``torch.use_deterministic_algorithms(True)``, so an operation without a deterministic implementation raises
an error naming it instead of running nondeterministically.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch

CUBLAS_WORKSPACE = ":4096:8"


@contextlib.contextmanager
def determinism(enabled: bool, cuda: bool) -> Iterator[None]:
    """Set torch's switches for one run (and put them back after: the demo runs many runs in one process)."""
    before = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
              torch.are_deterministic_algorithms_enabled())
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)  # read when cuBLAS starts
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True)
        print("Deterministic: cuDNN autotuner off, deterministic algorithms only (DETERMINISTIC True)")
    elif cuda:
        torch.backends.cudnn.benchmark = True  # the fastest kernels; their choice may vary between runs
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[:2]
        torch.use_deterministic_algorithms(before[2])
