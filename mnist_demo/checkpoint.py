"""Checkpoints: safetensors weights with the model's config and metrics as JSON in the same file.

A checkpoint is one `.safetensors` file; its header's metadata holds a JSON document (model name and
size, training config, normalisation constants, test accuracy, the command and seed that made it,
library versions). `save_checkpoint` also writes that JSON beside it as `<name>.json` for people to read.
Loading rebuilds the model from the metadata and loads the tensors strictly. Nothing is ever unpickled:
safetensors holds raw tensors only, and every field is checked before anything is allocated.

    python -c "from mnist_demo.checkpoint import load_checkpoint as l; print(l('weights/cnn.safetensors').metadata)"
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import platform
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from mnist_demo.data import MNIST_MEAN, MNIST_STD
from mnist_demo.files import read_bounded
from mnist_demo.models import MODELS, SIZE_ARG, GuideMLP, SmallCNN, build_model

FORMAT = "mnist-demo/1"  # bump when the metadata layout changes
METADATA_KEY = "mnist_demo"  # key of our JSON inside the safetensors header metadata
MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024  # the shipped CNN is well under 1 MB; anything huge is refused
MAX_HEADER_BYTES = 1024 * 1024  # safetensors' JSON header; ours is a few kB


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with a message fit to show a person."""


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: the rebuilt model (eval mode, CPU) and its metadata."""

    model: nn.Module
    metadata: dict[str, Any]

    @property
    def name(self) -> str:
        return self.metadata["model"]

    @property
    def test_accuracy(self) -> float | None:
        return self.metadata.get("test_accuracy")


def model_spec(model: nn.Module) -> tuple[str, int, int]:
    """The (name, size, crop) that `build_model` needs to rebuild `model`."""
    if isinstance(model, GuideMLP):
        return "mlp", model.fc1.out_features, 0
    if isinstance(model, SmallCNN):
        return "cnn", model.features[0][0].out_channels, model.crop
    raise TypeError(f"not a model of this package: {type(model).__name__}")


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": importlib.metadata.version("torchvision"),
    }


def checkpoint_metadata(model: nn.Module, /, **metadata: Any) -> dict[str, Any]:
    """`metadata` (JSON-able) with `model`'s spec, our normalisation and the library versions.

    The spec and normalisation always describe `model` itself, whatever `metadata` says, so a loaded
    checkpoint's metadata can be passed back in whole.
    """
    name, size, crop = model_spec(model)
    return {
        **{k: v for k, v in metadata.items() if k != "crop"},
        "format": FORMAT,
        "model": name,
        "size": size,
        **({"crop": crop} if crop else {}),  # absent means 0, as in every checkpoint made before crops
        "normalization": {"mean": MNIST_MEAN, "std": MNIST_STD},
        "versions": metadata.get("versions") or library_versions(),
    }


def checkpoint_bytes(model: nn.Module, /, **metadata: Any) -> tuple[bytes, dict[str, Any]]:
    """Serialise `model` with its `checkpoint_metadata` into safetensors bytes; (bytes, that metadata)."""
    meta = checkpoint_metadata(model, **metadata)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    return save_safetensors(tensors, metadata={METADATA_KEY: json.dumps(meta)}), meta


def save_checkpoint(path: Path | str, model: nn.Module, /, **metadata: Any) -> Path:
    """Write `path` (.safetensors) and a readable copy of its metadata beside it (.json)."""
    path = Path(path)
    data, meta = checkpoint_bytes(model, **metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return path


def _read_header(data: bytes) -> dict[str, Any]:
    """Parse and check the safetensors header ourselves, so that errors say what is wrong."""
    if len(data) < 8:
        raise CheckpointError("not a safetensors file: too short")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > MAX_HEADER_BYTES or 8 + header_len > len(data):
        raise CheckpointError("not a safetensors file, or truncated: bad header length")
    try:
        header = json.loads(data[8 : 8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"not a safetensors file: unreadable header ({err})") from None
    if not isinstance(header, dict):
        raise CheckpointError("not a safetensors file: header is not a JSON object")
    return header


def _read_metadata(header: dict[str, Any]) -> dict[str, Any]:
    raw = (header.get("__metadata__") or {}).get(METADATA_KEY)
    if raw is None:
        raise CheckpointError("this safetensors file was not written by mnist-demo (no model metadata)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"checkpoint metadata is not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else meta
        raise CheckpointError(f"unsupported checkpoint format {found!r}; expected {FORMAT!r}")
    if meta.get("model") not in MODELS:
        raise CheckpointError(f"unknown model {meta.get('model')!r} in checkpoint; expected one of {', '.join(MODELS)}")
    norm = meta.get("normalization") or {}
    if not (_close(norm.get("mean"), MNIST_MEAN) and _close(norm.get("std"), MNIST_STD)):
        raise CheckpointError(
            f"checkpoint was trained with normalisation {norm}, this app uses mean {MNIST_MEAN} and std {MNIST_STD}"
        )
    return meta


def _close(value: Any, expected: float) -> bool:
    return isinstance(value, (int, float)) and math.isclose(value, expected, rel_tol=1e-6)


def _expected_layout(model: nn.Module) -> dict[str, tuple[str, list[int]]]:
    dtypes = {torch.float32: "F32", torch.int64: "I64"}
    return {k: (dtypes[v.dtype], list(v.shape)) for k, v in model.state_dict().items()}


def load_checkpoint(source: Path | str | bytes) -> Checkpoint:
    """Load a checkpoint from a path or bytes; raise `CheckpointError` with a clear message if unusable."""
    try:
        data = read_bounded(source, MAX_CHECKPOINT_BYTES, "checkpoint")
    except ValueError as err:
        raise CheckpointError(str(err)) from None

    header = _read_header(data)
    meta = _read_metadata(header)
    try:
        model = build_model(meta["model"], meta.get("size"), meta.get("crop", 0))
    except ValueError as err:
        raise CheckpointError(f"checkpoint metadata: {err}") from None

    # Compare names, dtypes and shapes from the header before reading any tensor.
    expected = _expected_layout(model)
    found = {
        k: (v.get("dtype"), v.get("shape")) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)
    }
    if found != expected:
        missing = sorted(expected.keys() - found.keys())
        extra = sorted(found.keys() - expected.keys())
        wrong = sorted(k for k in expected.keys() & found.keys() if expected[k] != found[k])
        crop = f", crop={meta['crop']}" if meta.get("crop") else ""
        spec = f"{meta['model']} with {SIZE_ARG[meta['model']]}={meta.get('size')}{crop}"
        raise CheckpointError(
            f"weights do not match a {spec}: "
            f"missing {missing[:3]}, unexpected {extra[:3]}, wrong shape or type {wrong[:3]}"
        )
    try:
        tensors = load_safetensors(data)
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"corrupt or truncated safetensors data: {err}") from None
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"checkpoint holds NaN or infinite weights in {bad[:3]}")
    model.load_state_dict(tensors, strict=True)
    return Checkpoint(model.eval(), meta)
