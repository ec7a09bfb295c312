"""The GPU path: data cut on the device, CUDA training that agrees with the CPU's, checkpoints from a GPU.

The tests marked `gpu` need CUDA and skip with the reason where there is none (CI is CPU-only);
scripts/gpu_check.sh runs them on a GPU machine. The others check the same paths on the CPU, with the
"meta" device standing in for a GPU where only the movement of data matters.

    MNIST_ROOT=../shared/data python -m pytest tests/test_gpu.py
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from mnist_demo.checkpoint import checkpoint_bytes, load_checkpoint
from mnist_demo.data import Split, batches, normalize
from mnist_demo.finetune import FinetuneConfig, finetune
from mnist_demo.personal import PersonalSet
from mnist_demo.train import TrainConfig, new_model, pick_device, train
from testkit.styles import UNUSUAL, draw, variations
from testkit.zerogpu import cuda_tensors

ROOT = Path(__file__).resolve().parents[1]
HAS_CUDA = torch.cuda.is_available()
needs_cuda = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not HAS_CUDA,
        reason="needs CUDA, and this machine has none (CI is CPU-only): scripts/gpu_check.sh runs these on a GPU",
    ),
]
SMALL = TrainConfig(model="cnn", size=8, epochs=1, batch_size=64, lr=0.01, schedule="onecycle", train_size=1024)


class Copies(TorchDispatchMode):
    """Records every tensor copy between devices (or dtypes) made inside the block: (from device, to device)."""

    def __init__(self):
        super().__init__()
        self.copies: list[tuple[str, str]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.overloadpacket is torch.ops.aten._to_copy and args[0].device != out.device:
            self.copies.append((args[0].device.type, out.device.type))
        return out


def fake_split(n: int = 300) -> Split:
    g = torch.Generator().manual_seed(0)
    return Split(
        torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=g), torch.randint(0, 10, (n,), generator=g)
    )


# --------------------------------------------------------------------------------------------------
# On the CPU


def test_a_split_already_on_the_device_is_not_copied_again():
    split = fake_split()
    assert split.to("cpu") is split and split.to(torch.device("cpu")) is split
    on_meta = split.to("meta")
    assert on_meta.device.type == "meta" and on_meta.to("meta") is on_meta and len(on_meta) == len(split)


@pytest.mark.parametrize("batch_size", [64, 100])
def test_batches_are_cut_on_the_device_that_holds_the_split(batch_size):
    """A split on the device ("meta" here, a GPU in training): one copy per epoch (the shuffled order),
    none per batch. A split left on the CPU pays two copies per batch, images and labels."""
    split = fake_split()
    n_batches, on_device = -(-len(split) // batch_size), split.to("meta")
    with Copies() as resident:
        got = list(batches(on_device, batch_size, torch.Generator().manual_seed(0), "meta"))
    with Copies() as from_host:
        list(batches(split, batch_size, torch.Generator().manual_seed(0), "meta"))
    assert len(got) == n_batches and all(x.device.type == "meta" for x, _ in got)
    assert resident.copies == [("cpu", "meta")]
    assert len(from_host.copies) == 2 * n_batches


def test_the_loop_cuts_batches_where_the_split_lives(monkeypatch):
    """train() copies each split to its device once, then gathers every batch from that copy."""
    moved = []
    to = Split.to

    def spy(self, device):
        moved.append(str(torch.device(device)))
        return to(self, device)

    monkeypatch.setattr(Split, "to", spy)
    config = dataclasses.replace(SMALL, train_size=256)
    list(train(config, new_model(config), fake_split(256), fake_split(64), torch.device("cpu")))
    assert moved == ["cpu", "cpu"]  # the training and test splits, once each


def test_pick_device_gives_each_local_rank_its_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device() == pick_device(3) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device() == torch.device("cuda", 0) and pick_device(3) == torch.device("cuda", 3)


# --------------------------------------------------------------------------------------------------
# On a GPU


def gpu_test(function):
    """Marks a test `gpu` and skips it, saying why, where CUDA is absent."""
    for mark in needs_cuda:
        function = mark(function)
    return function


@gpu_test
def test_cuda_batches_are_the_cpu_batches():
    split = fake_split()
    on_gpu = list(batches(split.to("cuda"), 64, torch.Generator().manual_seed(0), "cuda"))
    on_cpu = list(batches(split, 64, torch.Generator().manual_seed(0), "cpu"))
    assert all(
        x.is_cuda and torch.equal(x.cpu(), y) and torch.equal(a.cpu(), b) for (x, a), (y, b) in zip(on_gpu, on_cpu)
    )


@gpu_test
@pytest.mark.mnist
@pytest.mark.parametrize("model_name", ["mlp", "cnn"])
def test_cuda_training_agrees_with_the_cpu(model_name, mnist_train, mnist_test):
    config = dataclasses.replace(SMALL, model=model_name, size=32 if model_name == "mlp" else 8)
    test = mnist_test.subset(1000)
    gpu_model, cpu_model = new_model(config), new_model(config)
    *_, on_gpu = train(config, gpu_model, mnist_train, test, torch.device("cuda"))
    *_, on_cpu = train(config, cpu_model, mnist_train, test, torch.device("cpu"))
    assert next(gpu_model.parameters()).is_cuda
    assert on_gpu.step == on_cpu.step == config.total_steps()
    # Different kernels sum in different orders: the runs drift apart a little, and stay as good.
    assert on_gpu.loss == pytest.approx(on_cpu.loss, rel=0.05)
    assert on_gpu.test_accuracy == pytest.approx(on_cpu.test_accuracy, abs=0.02)


@gpu_test
@pytest.mark.mnist
def test_bf16_autocast_trains_the_cnn_on_cuda(mnist_train, mnist_test):
    config = dataclasses.replace(SMALL, bf16=True, train_size=4096)
    model = new_model(config)
    events = list(train(config, model, mnist_train, mnist_test.subset(1000), torch.device("cuda")))
    assert events[0].loss > 1.5 > events[-1].loss and events[-1].test_accuracy > 0.8
    assert next(model.parameters()).dtype == torch.float32  # autocast computes in bf16, keeps fp32 weights


@gpu_test
def test_a_checkpoint_trained_on_a_gpu_loads_on_the_cpu():
    config = dataclasses.replace(SMALL, train_size=256)
    model = new_model(config)
    list(train(config, model, fake_split(256), fake_split(64), torch.device("cuda")))
    data, _ = checkpoint_bytes(model, config=dataclasses.asdict(config))
    loaded = load_checkpoint(data)
    assert not cuda_tensors(loaded.model)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor.cpu()), name
    x = normalize(fake_split(16).images)
    # cuDNN may run float32 convolutions in TF32 (10-bit mantissa) by default: compare in full float32.
    with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        on_gpu = model.eval()(x.cuda()).cpu()
        on_cpu = loaded.model(x)
    assert torch.allclose(on_gpu, on_cpu, atol=1e-4), (on_gpu - on_cpu).abs().max()


@gpu_test
def test_finetuning_on_a_gpu_hands_back_a_cpu_model():
    weights = load_checkpoint(ROOT / "weights" / "cnn.safetensors")
    mine = PersonalSet()
    for k, (digit, strokes) in enumerate(UNUSUAL.values()):
        for style in variations(2, seed=100 + k):
            mine.add(draw(strokes, style), digit)
    config = FinetuneConfig(max_steps=6, batch_size=16, log_every=2, mnist_eval_size=64)
    *_, result = finetune(weights, mine, config, fake_split(512), fake_split(128), device="cuda")
    assert not cuda_tensors(result.checkpoint.model) and not cuda_tensors(weights.model)
    assert result.steps == 6


@gpu_test
@pytest.mark.mnist
def test_torchrun_on_one_gpu_uses_nccl_and_ddp(tmp_path, mnist_train):
    out = tmp_path / "ddp.safetensors"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["--model", "cnn", "--size", "8", "--train-size", "2048", "--batch-size", "128", "--epochs", "2",
            "--lr", "0.01", "--schedule", "onecycle"]  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "-m", "mnist_demo.train",
         *args, "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    checkpoint = load_checkpoint(out)
    assert checkpoint.metadata["hardware"]["device"] == "cuda:0" and checkpoint.test_accuracy > 0.8


@gpu_test
@pytest.mark.mnist
def test_a_run_on_the_gpu_maps_each_epoch_and_hands_back_cpu_frames(mnist_train, mnist_test):
    """The stream a ZeroGPU worker runs: frames computed where the model is, handed back as CPU arrays, and
    the accuracy over all 10,000 test digits (the map's 2,000 measured in the pass that maps them)."""
    from mnist_demo.metrics import accuracy
    from mnist_demo.runs import train_stream

    updates = list(train_stream(dataclasses.replace(SMALL, epochs=2), mnist_test.images[0].numpy(), "cuda"))
    frames = [u.frame for u in updates if u.frame is not None]
    assert [f.epoch for f in frames] == [0, 1, 2]
    assert all(isinstance(f.points, type(f.first_layer)) and f.points.shape == (2000, 2) for f in frames)
    model = [u.checkpoint for u in updates if u.checkpoint is not None][-1]
    assert (
        not cuda_tensors(model.model) and abs(accuracy(model.model, mnist_test) - model.test_accuracy) < 5e-4
    )  # a few digits may tip
