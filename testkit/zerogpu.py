"""A ZeroGPU call without ZeroGPU: a generator function run in a forked process, arguments and yields pickled.

The `spaces` package runs a `@spaces.GPU` function that way on a ZeroGPU Space (spaces/zero/wrappers.py):
the worker is forked from the web process, the arguments travel through a pickling queue, and each
yielded value is pickled back. Whatever the function changes in its arguments stays in the worker.
`cuda_tensors` finds GPU tensors in what comes back (none may: the web process has no GPU).

    python -m pytest tests/test_zerogpu.py
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import pickle
import queue
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

WAIT_S = 300  # longest wait for the worker's next value: a hang fails instead of stalling


def _worker(results: Any, function: Callable, pickled_args: bytes) -> None:
    torch.set_num_threads(1)  # a forked child must not reuse the parent's OpenMP pool
    try:
        args, kwargs = pickle.loads(pickled_args)
        for value in function(*args, **kwargs):
            results.put(("value", pickle.dumps(value)))
        results.put(("end", None))
    except Exception as err:  # reported to the parent, as spaces reports a worker's exception
        results.put(("error", f"{type(err).__name__}: {err}"))


def run_forked(function: Callable[..., Iterator], *args: Any, **kwargs: Any) -> Iterator[Any]:
    """Yield what generator `function(*args, **kwargs)` yields, run as ZeroGPU runs it (fork + pickles)."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    worker = context.Process(target=_worker, args=(results, function, pickle.dumps((args, kwargs))), daemon=True)
    worker.start()
    try:
        while True:
            try:
                kind, payload = results.get(timeout=WAIT_S)
            except queue.Empty:
                raise TimeoutError(f"the forked worker sent nothing for {WAIT_S} s") from None
            if kind == "end":
                return
            if kind == "error":
                raise RuntimeError(f"in the forked worker: {payload}")
            yield pickle.loads(payload)
    finally:
        worker.join(timeout=WAIT_S)
        if worker.is_alive():
            worker.kill()


def cuda_tensors(value: Any, path: str = "value") -> list[str]:
    """Where `value` (dataclasses, containers, modules, tensors) holds tensors that are not on the CPU."""
    if isinstance(value, torch.Tensor):
        return [] if value.device.type == "cpu" else [f"{path} on {value.device}"]
    if isinstance(value, nn.Module):
        return [p for name, t in value.state_dict().items() for p in cuda_tensors(t, f"{path}.{name}")]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [p for f in dataclasses.fields(value) for p in cuda_tensors(getattr(value, f.name), f"{path}.{f.name}")]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in cuda_tensors(v, f"{path}[{k!r}]")]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in cuda_tensors(v, f"{path}[{i}]")]
    return []
