"""Checkpoints round-trip exactly, and anything malformed is refused without unpickling."""

from __future__ import annotations

import json
import pickle
import struct

import pytest
import torch
from safetensors.torch import save as save_safetensors

from mnist_demo import checkpoint
from mnist_demo.checkpoint import CheckpointError, checkpoint_bytes, load_checkpoint, save_checkpoint
from mnist_demo.models import build_model


@pytest.fixture(autouse=True)
def never_unpickle(monkeypatch):
    """Any attempt to unpickle during these tests fails them."""

    def forbidden(*args, **kwargs):
        raise AssertionError("something tried to unpickle")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)


@pytest.mark.parametrize("name, size, crop", [("mlp", 28, 0), ("mlp", 64, 0), ("cnn", 8, 0), ("cnn", 8, 2)])
def test_round_trip_gives_identical_logits(tmp_path, name, size, crop):
    torch.manual_seed(0)
    model = build_model(name, size, crop).eval()
    if name == "cnn":  # give batch norm non-trivial running statistics
        model.train()
        model(torch.randn(16, 1, 28, 28))
        model.eval()
    path = save_checkpoint(tmp_path / "m.safetensors", model, test_accuracy=0.5, seed=3, command="x")
    loaded = load_checkpoint(path)
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(model(x), loaded.model(x))
    assert not loaded.model.training
    assert loaded.metadata["seed"] == 3 and loaded.test_accuracy == 0.5 and loaded.name == name
    assert json.loads((tmp_path / "m.json").read_text())["size"] == size
    assert loaded.metadata.get("crop", 0) == crop == getattr(loaded.model, "crop", 0)
    assert load_checkpoint(path.read_bytes()).metadata == loaded.metadata  # bytes work too


def _with_metadata(net, **changes) -> bytes:
    """A checkpoint of `model` whose JSON metadata is edited by `changes`."""
    _, meta = checkpoint_bytes(net)
    meta.update(changes)
    tensors = {k: v.contiguous() for k, v in net.state_dict().items()}
    return save_safetensors(tensors, metadata={checkpoint.METADATA_KEY: json.dumps(meta)})


def _bad_files():
    mlp = build_model("mlp")
    good, _ = checkpoint_bytes(mlp)
    huge_header = struct.pack("<Q", 10**12) + good[8:]
    nan_mlp = build_model("mlp")
    with torch.no_grad():
        nan_mlp.fc1.weight[0, 0] = float("nan")
    extra = save_safetensors(
        {**mlp.state_dict(), "extra": torch.zeros(1)},
        metadata={checkpoint.METADATA_KEY: json.dumps(checkpoint_bytes(mlp)[1])},
    )
    return {
        "empty": (b"", "too short"),
        "random bytes": (bytes(range(256)) * 4, "not a safetensors file"),
        "truncated": (good[: len(good) // 2], "truncated"),
        "huge header length": (huge_header, "bad header length"),
        "plain safetensors": (save_safetensors({"w": torch.zeros(2)}), "not written by mnist-demo"),
        "unknown model": (_with_metadata(mlp, model="transformer"), "unknown model"),
        "wrong format": (_with_metadata(mlp, format="other/9"), "unsupported checkpoint format"),
        "size mismatch": (_with_metadata(mlp, size=64), "do not match"),
        "absurd size": (_with_metadata(mlp, size=10**9), "checkpoint metadata"),
        "a cropping mlp": (_with_metadata(mlp, crop=2), "checkpoint metadata: only the CNN"),
        "absurd crop": (_with_metadata(build_model("cnn", 4), crop=99), "checkpoint metadata: crop"),
        "other normalisation": (_with_metadata(mlp, normalization={"mean": 0.5, "std": 0.5}), "normalisation"),
        "extra tensor": (extra, "unexpected"),
        "nan weights": (checkpoint_bytes(nan_mlp)[0], "NaN"),
        "pickle": (pickle.dumps(mlp.state_dict()), "not a safetensors file"),
    }


@pytest.mark.parametrize("case", list(_bad_files()))
def test_malformed_checkpoints_are_refused_clearly(case):
    data, message = _bad_files()[case]
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(data)


def test_torch_save_file_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(build_model("mlp").state_dict(), path)  # a zip holding a pickle
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_checkpoint(path)


def test_oversized_and_missing_files_are_refused(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "m.safetensors", build_model("mlp"))
    monkeypatch.setattr(checkpoint, "MAX_CHECKPOINT_BYTES", 1000)
    with pytest.raises(CheckpointError, match="at most"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="at most"):
        load_checkpoint(path.read_bytes())
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        load_checkpoint(tmp_path / "missing.safetensors")
