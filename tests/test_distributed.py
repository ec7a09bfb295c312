"""Training in several processes (torchrun, DDP): each rank's share, the same result as one process, failures.

The slow tests launch `python -m torch.distributed.run` (torchrun) with 2 CPU processes (gloo) on 2,048
MNIST images for 32 steps, and train the same global batches in this process, with one torch thread as
torchrun gives each worker. Measured on 2 cores (printed with `pytest -s`): the MLP's weights differ by at
most 3e-8 (float rounding; the bound is 1e-5) and the test accuracy is the same. The CNN's BatchNorm
normalises each process's share with its own statistics, so it is compared with one process doing exactly
that (`PerShareBatchNorm`): 0 difference. Against the plain one-process run (the whole batch's statistics)
its weights differ by up to 0.10 and its test accuracy by -0.15 pp (bound: 1 pp).

    MNIST_ROOT=../shared/data python -m pytest tests/test_distributed.py
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from mnist_demo import distributed
from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.distributed import World
from mnist_demo.metrics import accuracy
from mnist_demo.train import TrainConfig, new_model, train

ROOT = Path(__file__).resolve().parents[1]
FAILING_RANK = Path(__file__).with_name("ddp_failing_rank.py")
PROCESSES = 2
LAUNCH_TIMEOUT_S = 300  # a hang fails the test instead of stalling CI; a run takes about 30 s here
WEIGHT_TOLERANCE = 1e-5  # max abs difference of any weight after 32 steps (measured: 3e-8 for the MLP)
COMMON = ["--train-size", "2048", "--batch-size", "128", "--epochs", "2", "--seed", "0"]
RUNS = {
    "mlp": ["--model", "mlp", "--lr", "0.002", *COMMON],
    "cnn": ["--model", "cnn", "--size", "8", "--lr", "0.01", "--schedule", "onecycle", *COMMON],
}


def torchrun(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node 2 <args>` from the repository root, on a free port."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={PROCESSES}", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S)


# --------------------------------------------------------------------------------------------------
# Fast: shares and step counts.


@pytest.mark.parametrize("n", [1, 2, 3, 7, 128, 129])
@pytest.mark.parametrize("size", [1, 2, 3, 8])
def test_shares_cover_a_batch_once_in_order(n, size):
    shares = [World(rank, size).share(n) for rank in range(size)]
    rows = [i for s in shares for i in range(n)[s]]
    assert rows == list(range(n))
    lengths = [len(range(n)[s]) for s in shares]
    assert max(lengths) - min(lengths) <= 1
    assert n < size or min(lengths) >= 1


def test_world_comes_from_torchruns_variables():
    assert distributed.from_env({}) == World()
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}
    assert distributed.from_env(env) == World(3, 4, 1) and not World(3, 4, 1).is_main
    with pytest.raises(ValueError, match="RANK"):
        distributed.from_env({"WORLD_SIZE": "2"})
    with pytest.raises(ValueError):
        World(2, 2)


def test_plain_process_is_a_world_of_one():
    assert distributed.current() == World()
    model = nn.Linear(2, 2)
    assert distributed.wrap(model, torch.device("cpu")) is model
    value = torch.tensor(3.0)
    assert distributed.average(value) is value


def test_a_last_batch_too_small_to_share_is_not_counted():
    config = TrainConfig(train_size=1025, batch_size=128, epochs=2)
    assert config.steps_per_epoch() == 9 and config.steps_per_epoch(processes=2) == 8
    assert TrainConfig(train_size=1026, batch_size=128).steps_per_epoch(processes=2) == 9
    assert config.total_steps(processes=2) == 16


def test_backends():
    assert distributed.backend_for(torch.device("cpu")) == "gloo"
    assert distributed.backend_for(torch.device("cuda", 1)) == "nccl"


# --------------------------------------------------------------------------------------------------
# Slow: two processes against one.


class PerShareBatchNorm(nn.Module):
    """One process computing what DDP's processes compute with plain BatchNorm: each share of a batch goes
    through the model on its own (normalised with its own statistics), and the running statistics kept
    are rank 0's, which DDP copies to every process before each forward."""

    def __init__(self, model: nn.Module, processes: int):
        super().__init__()
        self.model, self.processes = model, processes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.model(x)
        # Buffers are replaced, not overwritten in place: autograd checks that the tensors a forward used
        # are unchanged at backward time.
        before = [(m, name, b) for m in self.model.modules() for name, b in m.named_buffers(recurse=False)]
        logits = [torch.empty(0)] * self.processes
        for rank in reversed(range(self.processes)):  # rank 0 last: its running statistics are the ones kept
            for module, name, buffer in before:
                setattr(module, name, buffer.clone())
            logits[rank] = self.model(x[World(rank, self.processes).share(len(x))])
        return torch.cat(logits)


def config_of(args: list[str]) -> TrainConfig:
    """The TrainConfig that `python -m mnist_demo.train <args>` builds."""
    from mnist_demo.train import config_parser

    options = vars(config_parser().parse_args(args))
    return TrainConfig(**{f.name: options[f.name] for f in dataclasses.fields(TrainConfig)})  # not --out, --init


@pytest.mark.slow
@pytest.mark.mnist
@pytest.mark.parametrize("model_name", ["mlp", "cnn"])
def test_two_processes_train_what_one_does(model_name, tmp_path, mnist_train, mnist_test, one_thread, capsys):
    out = tmp_path / "ddp.safetensors"
    run = torchrun(["-m", "mnist_demo.train", *RUNS[model_name], "--out", str(out)], tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.stdout.count("done: test accuracy") == 1 and run.stdout.count("saved") == 1  # rank 0 alone
    ddp = load_checkpoint(out)
    assert ddp.metadata["command"].startswith(f"torchrun --nnodes 1 --nproc_per_node {PROCESSES} -m mnist_demo.train")

    config = config_of(RUNS[model_name])
    one = new_model(config)
    reference = PerShareBatchNorm(one, PROCESSES) if model_name == "cnn" else one
    *_, last = train(config, reference, mnist_train, mnist_test, torch.device("cpu"))
    assert last.step == config.total_steps() == 32
    expected = one.state_dict()
    worst = max((ddp.model.state_dict()[k].float() - v.float()).abs().max().item() for k, v in expected.items())
    with capsys.disabled():
        print(f"\n{model_name}, 2 processes against 1 computing the same: weights differ by up to {worst:.1e}")
    assert worst <= WEIGHT_TOLERANCE, f"weights differ by up to {worst:.2e}"
    assert ddp.test_accuracy == pytest.approx(last.test_accuracy, abs=1 / len(mnist_test))
    assert ddp.test_accuracy > 0.8

    if model_name == "cnn":  # what per-share batch statistics change against one process with the whole batch
        plain = new_model(config)
        list(train(config, plain, mnist_train, mnist_test, torch.device("cpu")))
        gap = max(
            (ddp.model.state_dict()[k].float() - v.float()).abs().max().item() for k, v in plain.state_dict().items()
        )
        points = 100 * (ddp.test_accuracy - accuracy(plain, mnist_test))
        with capsys.disabled():
            print(
                f"\nCNN, 2 processes against 1 with the whole batch in BatchNorm: weights differ by up to "
                f"{gap:.3f}, test accuracy by {points:+.2f} pp"
            )
        assert abs(points) < 1.0


@pytest.mark.slow
@pytest.mark.mnist
def test_a_failing_rank_ends_the_run_with_its_error(tmp_path, mnist_train):
    start = time.monotonic()
    run = torchrun([str(FAILING_RANK), *RUNS["mlp"], "--out", str(tmp_path / "never.safetensors")], tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert "planted failure in rank 1 at step 3" in output  # the cause, named by torchrun
    assert "ChildFailedError" in output or "FAILED" in output
    assert not (tmp_path / "never.safetensors").exists()
    assert time.monotonic() - start < LAUNCH_TIMEOUT_S / 2  # torchrun stopped rank 0: nobody waited out a timeout
