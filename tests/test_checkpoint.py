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


def test_the_readable_copy_leaves_long_base64_in_the_file(tmp_path):
    blob = "A" * 5000  # a "not a digit" subspace is ~200 kB of base64
    path = save_checkpoint(
        tmp_path / "m.safetensors", build_model("mlp", 8), decline_subspace={"mean": blob, "rank": 2}
    )
    readable = json.loads((tmp_path / "m.json").read_text())["decline_subspace"]
    assert readable["rank"] == 2 and "5,000 characters" in readable["mean"]
    assert load_checkpoint(path).metadata["decline_subspace"]["mean"] == blob


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
    with pytest.raises(CheckpointError, match="no checkpoint file named missing.safetensors") as missing:
        load_checkpoint(tmp_path / "missing.safetensors")
    assert str(tmp_path) not in str(missing.value)  # in the app, the folder is the server's own


def _raw(header: dict, data: bytes = b"") -> bytes:
    """A safetensors file with this header, written by hand: fields safetensors itself would never write."""
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def _meta(**changes) -> dict:
    return {**checkpoint_bytes(build_model("mlp"))[1], **changes}


@pytest.mark.parametrize(
    "header, message",
    [
        ({"__metadata__": ["not", "an", "object"]}, "not written by mnist-demo"),
        ({"__metadata__": {checkpoint.METADATA_KEY: 5}}, "not written by mnist-demo"),
        ({"__metadata__": {checkpoint.METADATA_KEY: json.dumps(["a", "list"])}}, "unsupported checkpoint format"),
        ({"__metadata__": {checkpoint.METADATA_KEY: json.dumps(_meta(model=["mlp"]))}}, "unknown model"),
        ({"__metadata__": {checkpoint.METADATA_KEY: json.dumps(_meta(model={"a": 1}))}}, "unknown model"),
        ({"__metadata__": {checkpoint.METADATA_KEY: json.dumps(_meta(normalization="mnist"))}}, "normalisation"),
        ({"__metadata__": {checkpoint.METADATA_KEY: json.dumps(_meta(normalization=[0.1307]))}}, "normalisation"),
        ({"__metadata__": {checkpoint.METADATA_KEY: json.dumps(_meta(size="28"))}}, "hidden must be an integer"),
        ({"__metadata__": {checkpoint.METADATA_KEY: json.dumps(_meta(size=True))}}, "hidden must be an integer"),
        ({"__metadata__": {checkpoint.METADATA_KEY: json.dumps(_meta(size=None))}}, "hidden must be an integer"),
        ({"__metadata__": {checkpoint.METADATA_KEY: json.dumps(_meta(crop="2"))}}, "only the CNN"),
        ({"__metadata__": {checkpoint.METADATA_KEY: json.dumps(_meta(test_accuracy="99%"))}}, "test_accuracy must"),
        ({"__metadata__": {checkpoint.METADATA_KEY: json.dumps(_meta(test_accuracy=7))}}, "test_accuracy must"),
        ({"__metadata__": {checkpoint.METADATA_KEY: json.dumps(_meta(finetuned=[1]))}}, "'finetuned' must be"),
        (
            {"__metadata__": {checkpoint.METADATA_KEY: json.dumps(_meta(finetuned={"mnist_after": "x"}))}},
            "mnist_after must",
        ),
        ({"__metadata__": {checkpoint.METADATA_KEY: "[" * 100_000 + "]" * 100_000}}, "not valid JSON"),
        ({"__metadata__": {checkpoint.METADATA_KEY: json.dumps(_meta())}, "fc1.weight": "F32"}, "do not match"),
        ({"__metadata__": {checkpoint.METADATA_KEY: json.dumps(_meta())}, "fc1.weight": {"shape": 5}}, "do not match"),
    ],
)
def test_malformed_metadata_types_get_a_checkpoint_error(header, message):
    """Each of these raised AttributeError, TypeError or RecursionError from inside the loader before."""
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(_raw(header))


def test_a_deeply_nested_header_is_refused_clearly():
    data = b"[" * 200_000 + b"]" * 200_000
    with pytest.raises(CheckpointError, match="unreadable header"):
        load_checkpoint(struct.pack("<Q", len(data)) + data)


@pytest.mark.parametrize(
    "claim, message",
    [
        ({"model": "cnn", "size": 2048}, "width must be an integer from 1 to 64"),
        ({"model": "mlp", "size": 4096}, "hidden must be an integer from 1 to 1024"),
        ({"model": "cnn", "size": 64}, "do not match a cnn with width=64"),  # legal width, wrong tensors
        ({"model": "mlp", "size": 1024}, "do not match a mlp with hidden=1024"),
    ],
)
def test_a_claimed_wide_model_is_refused_without_building_it(monkeypatch, claim, message):
    """A 1 KB file that claims a wide model once cost +1.44 GB and seconds: the model was built first."""
    data = _with_metadata(build_model("mlp", 4), **claim)
    assert len(data) < 16 * 1024

    def forbidden(*args, **kwargs):
        raise AssertionError("the model was built before the header was checked")

    monkeypatch.setattr(checkpoint, "build_model", forbidden)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(data)


def test_command_line_checkpoints_may_be_wider_than_the_app_holds():
    from mnist_demo.models import COMMAND_LINE_LARGEST, LARGEST

    data, _ = checkpoint_bytes(build_model("cnn", LARGEST["cnn"] + 1))
    with pytest.raises(CheckpointError, match="the largest cnn this app holds"):
        load_checkpoint(data)
    assert load_checkpoint(data, largest=COMMAND_LINE_LARGEST).metadata["size"] == LARGEST["cnn"] + 1


def _negative_variance_cnn():
    cnn = build_model("cnn", 4)
    with torch.no_grad():
        cnn.features[0][2].running_var.fill_(-1.0)  # finite, but sqrt(var + eps) is NaN
    return cnn


def _huge_mlp():
    mlp = build_model("mlp")
    with torch.no_grad():
        mlp.fc1.weight.fill_(1e30)
        mlp.fc2.weight.fill_(1e30)  # finite weights, infinite logits
    return mlp


@pytest.mark.parametrize("make", [_negative_variance_cnn, _huge_mlp])
def test_finite_weights_with_non_finite_outputs_are_refused(make):
    """Such a model once loaded and said "It's a 0 (nan% sure)"."""
    data, _ = checkpoint_bytes(make())
    with pytest.raises(CheckpointError, match="outputs are NaN or infinite"):
        load_checkpoint(data)
