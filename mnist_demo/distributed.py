"""Several processes training one model: torchrun's environment, the process group, and each rank's share.

`torchrun` starts one process per GPU (or several on a CPU) and tells each who it is through environment
variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). Every process walks the same seeded
order of global batches and takes its own contiguous slice of each; DistributedDataParallel averages the
gradients in `backward()`, so every process takes the same optimizer step. Rank 0 evaluates, prints and
writes the checkpoint. Without torchrun nothing here does anything: one process, the whole batch.

BatchNorm: each process normalises with the statistics of its own share of the batch (as with one
process and a batch that size), and DDP copies rank 0's running statistics to the others before each
forward. `nn.SyncBatchNorm` would make several processes compute what one does, but in torch 2.14 it
refuses CPU tensors ("SyncBatchNorm expected input tensor to be on GPU"), so the CNN would train
differently on CPUs and GPUs; it is not used. tests/test_distributed.py measures the difference.

    torchrun --nproc_per_node 2 -m mnist_demo.train --model cnn --epochs 1 --out /tmp/cnn-ddp.safetensors
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

# A rank that stops answering without dying (a crash ends the others at once: torchrun stops them) fails
# the run's next collective after this long instead of gloo's default half hour.
COLLECTIVE_TIMEOUT = timedelta(minutes=10)


@dataclass(frozen=True)
class World:
    """Who this process is among those training together; the default is the one process of a plain run."""

    rank: int = 0  # this process, from 0
    size: int = 1  # processes in all, on every machine
    local_rank: int = 0  # this process on its own machine: picks its GPU

    def __post_init__(self) -> None:
        if not (0 <= self.rank < self.size and 0 <= self.local_rank < self.size):
            raise ValueError(f"rank {self.rank} and local rank {self.local_rank} must be below world size {self.size}")

    @property
    def is_main(self) -> bool:
        """Rank 0 evaluates, prints and saves."""
        return self.rank == 0

    def share(self, n: int) -> slice:
        """This process's contiguous part of a global batch of `n`: sizes differ by one at most, none empty
        when `n >= size` (a smaller batch is dropped by the loop on every rank alike)."""
        base, extra = divmod(n, self.size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))


def launched(environ: Mapping[str, str] = os.environ) -> bool:
    """True when torchrun (or another launcher speaking its protocol) started this process."""
    return "WORLD_SIZE" in environ


def from_env(environ: Mapping[str, str] = os.environ) -> World:
    """This process's `World` from torchrun's variables; a plain run's when they are absent."""
    if not launched(environ):
        return World()
    try:
        return World(int(environ["RANK"]), int(environ["WORLD_SIZE"]), int(environ.get("LOCAL_RANK", "0")))
    except (KeyError, ValueError) as err:
        raise ValueError(f"torchrun's RANK, WORLD_SIZE and LOCAL_RANK are missing or not integers: {err}") from None


def current() -> World:
    """The `World` of the process group in force (set up by `process_group`), else a plain run's."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def backend_for(device: torch.device) -> str:
    """NCCL between GPUs, gloo between CPU processes."""
    return "nccl" if device.type == "cuda" else "gloo"


@contextlib.contextmanager
def process_group(world: World, device: torch.device) -> Iterator[None]:
    """Join the other processes for the duration of the block when torchrun launched us; else do nothing.

    The group is torch's process-wide state, read back by `current()`. It is torn down however the block
    ends, so that an error in this rank reaches torchrun as this process's exit, not as a hang.
    """
    if not launched():
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL binds each process to its own GPU
    dist.init_process_group(backend_for(device), rank=world.rank, world_size=world.size, timeout=COLLECTIVE_TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` in DistributedDataParallel when a process group is in force (its backward averages the
    gradients over the processes); `model` itself otherwise. Both share the same parameters."""
    if not (dist.is_available() and dist.is_initialized()):
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def average(value: torch.Tensor) -> torch.Tensor:
    """The mean of `value` over the processes (a copy; `value` is untouched); `value` in a plain run."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    total = value.detach().clone()
    dist.all_reduce(total)  # a sum: gloo has no average
    return total / dist.get_world_size()
