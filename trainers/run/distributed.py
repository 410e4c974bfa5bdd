"""Several processes under ``torchrun``: one per GPU (gloo processes on a CPU-only machine).

Each process trains on its own shard of every epoch (``DistributedSampler``); gradients of the registered
models are averaged before each optimiser step, so every process holds the same prompts; rank 0 alone
prints, evaluates and writes checkpoints, ``log.txt`` and ``results.json`` (the other processes print only
their errors). ``DATALOADER.TRAIN_X.BATCH_SIZE`` is per process, as in PyTorch's DDP: N processes step on
N x BATCH_SIZE images together.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterable, Iterator

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler


def init_from_env() -> None:
    """Join the process group that ``torchrun`` describes in the environment (WORLD_SIZE > 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def finish() -> None:
    """Leave together: the other processes wait for rank 0's test, then the group is taken down (a process
    that exits with the group still up can abort in gloo's threads)."""
    if is_distributed():
        dist.barrier()
        dist.destroy_process_group()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_main_process() -> bool:
    return not is_distributed() or dist.get_rank() == 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """Rank 0 runs the block first (it may write split files and few-shot caches into $DATA); the other
    processes wait for it, then read what it wrote."""
    if is_distributed() and not is_main_process():
        dist.barrier()
    yield
    if is_distributed() and is_main_process():
        dist.barrier()


def shard_loader(loader: DataLoader, seed: int) -> DataLoader:
    """The same loader over this process's shard; reshuffled per epoch through ``set_epoch``."""
    sampler = DistributedSampler(loader.dataset, shuffle=True, seed=max(seed, 0))
    drop_last = len(sampler) >= loader.batch_size  # Dassl's rule, applied to the shard
    sharded = DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler, num_workers=loader.num_workers,
                         drop_last=drop_last, pin_memory=loader.pin_memory)  # workers anew per epoch: exact resume
    if len(sharded) == 0:
        raise ValueError(f"Each of the {dist.get_world_size()} processes gets no batch of {loader.batch_size}")
    return sharded


def average_gradients(parameters: Iterable[torch.Tensor]) -> None:
    for param in parameters:
        if param.grad is not None:
            dist.all_reduce(param.grad)
            param.grad /= dist.get_world_size()


def parameters_agree(parameters: Iterable[torch.Tensor]) -> bool:
    """True when every process holds the same values (checked on rank 0's copy)."""
    for param in parameters:
        reference = param.detach().clone()
        dist.broadcast(reference, src=0)
        same = torch.tensor([int(torch.equal(reference, param.detach()))], device=param.device)
        dist.all_reduce(same, op=dist.ReduceOp.MIN)
        if not same.item():
            return False
    return True
