"""Checkpoints: safetensors weights with the model's config and metrics as JSON in the same file.

A checkpoint is one `.safetensors` file; its header's metadata holds a JSON document (model name and
size, training config, normalisation constants, test accuracy, the command and seed that made it,
library versions). `save_checkpoint` also writes that JSON beside it as `<name>.json` for people to read.
Loading checks the metadata's fields and compares the header's tensors with the layout the metadata
implies (computed, not built) before it builds the model and loads the tensors strictly; a model whose
outputs are not finite is refused. Nothing is ever unpickled: safetensors holds raw tensors only.

    python -c "from mnist_demo.checkpoint import load_checkpoint as l; print(l('weights/cnn.safetensors').metadata)"
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import platform
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from mnist_demo.data import IMAGE_SIZE, MNIST_MEAN, MNIST_STD, normalize
from mnist_demo.files import read_bounded
from mnist_demo.models import LARGEST, MAX_CROP, MODELS, SIZE_ARG, GuideMLP, SmallCNN, build_model, expected_layout

FORMAT = "mnist-demo/1"  # bump when the metadata layout changes
METADATA_KEY = "mnist_demo"  # key of our JSON inside the safetensors header metadata
MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024  # the shipped CNN is well under 1 MB; anything huge is refused
MAX_HEADER_BYTES = 1024 * 1024  # safetensors' JSON header; ours is a few kB
SHOWN_CHARS = 60  # at most this much of an untrusted value is quoted back in an error message
READABLE_CHARS = 1000  # longer strings are left out of the readable .json copy (the full metadata is in the file)


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
    path.with_suffix(".json").write_text(json.dumps(_readable(meta), indent=2) + "\n")
    return path


def _readable(meta: dict[str, Any]) -> dict[str, Any]:
    """The metadata for people: long base64 strings (the "not a digit" rule's subspace) shortened to a note."""

    def shorten(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: shorten(v) for k, v in value.items()}
        if isinstance(value, str) and len(value) > READABLE_CHARS:
            return f"<{len(value):,} characters of base64: in the .safetensors header>"
        return value

    return shorten(meta)


def _read_header(data: bytes) -> dict[str, Any]:
    """Parse and check the safetensors header ourselves, so that errors say what is wrong."""
    if len(data) < 8:
        raise CheckpointError("not a safetensors file: too short")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > MAX_HEADER_BYTES or 8 + header_len > len(data):
        raise CheckpointError("not a safetensors file, or truncated: bad header length")
    try:
        header = json.loads(data[8 : 8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise CheckpointError(f"not a safetensors file: unreadable header ({_brief(err)})") from None
    if not isinstance(header, dict):
        raise CheckpointError("not a safetensors file: header is not a JSON object")
    return header


def _brief(err: Exception) -> str:
    """An exception's message without the input it quotes (a deeply nested header gives no message at all)."""
    return str(err) if isinstance(err, json.JSONDecodeError) else type(err).__name__


def _read_metadata(header: dict[str, Any], largest: Mapping[str, int]) -> dict[str, Any]:
    """Our JSON from the header, every field the app reads checked for its type and range."""
    extra = header.get("__metadata__")
    raw = extra.get(METADATA_KEY) if isinstance(extra, dict) else None
    if not isinstance(raw, str):
        raise CheckpointError("this safetensors file was not written by mnist-demo (no model metadata)")
    try:
        meta = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as err:
        raise CheckpointError(f"checkpoint metadata is not valid JSON ({_brief(err)})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"unsupported checkpoint format {_short(found)}; expected {FORMAT!r}")
    name = meta.get("model")
    if not isinstance(name, str) or name not in MODELS:
        raise CheckpointError(f"unknown model {_short(name)} in checkpoint; expected one of {', '.join(MODELS)}")
    size, crop = meta.get("size"), meta.get("crop", 0)
    if not _integer(size, 1, largest[name]):
        raise CheckpointError(
            f"checkpoint metadata: {SIZE_ARG[name]} must be an integer from 1 to {largest[name]} "
            f"(the largest {name} this app holds), got {_short(size)}"
        )
    if not _integer(crop, 0, MAX_CROP if name == "cnn" else 0):
        if name != "cnn":
            raise CheckpointError(f"checkpoint metadata: only the CNN crops its input, not the {name}")
        raise CheckpointError(f"checkpoint metadata: crop must be an integer from 0 to {MAX_CROP}, got {_short(crop)}")
    norm = meta.get("normalization")
    if not (isinstance(norm, dict) and _close(norm.get("mean"), MNIST_MEAN) and _close(norm.get("std"), MNIST_STD)):
        raise CheckpointError(
            f"checkpoint was trained with normalisation {_short(norm)}, "
            f"this app uses mean {MNIST_MEAN} and std {MNIST_STD}"
        )
    finetuned = meta.get("finetuned", {})
    if not isinstance(finetuned, dict):
        raise CheckpointError(f"checkpoint metadata: 'finetuned' must be an object, got {_short(finetuned)}")
    for key, value in (("test_accuracy", meta.get("test_accuracy")), ("mnist_after", finetuned.get("mnist_after"))):
        if value is not None and not _fraction(value):
            raise CheckpointError(f"checkpoint metadata: {key} must be a number from 0 to 1, got {_short(value)}")
    return meta


def _short(value: Any) -> str:
    """A value from an untrusted file, quoted briefly."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def _integer(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _fraction(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0


def _close(value: Any, expected: float) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isclose(value, expected, rel_tol=1e-6)
    )


def _check_layout(header: dict[str, Any], meta: dict[str, Any]) -> None:
    """The header's tensor names, dtypes and shapes against the metadata's spec, computed without a model."""
    expected = expected_layout(meta["model"], meta["size"], meta.get("crop", 0))
    found = {k: (v.get("dtype"), v.get("shape")) if isinstance(v, dict) else v for k, v in header.items()}
    found.pop("__metadata__", None)
    if found == expected:
        return
    missing = sorted(expected.keys() - found.keys())
    extra = sorted(found.keys() - expected.keys())
    wrong = sorted(k for k in expected.keys() & found.keys() if expected[k] != found[k])
    crop = f", crop={meta['crop']}" if meta.get("crop") else ""
    spec = f"{meta['model']} with {SIZE_ARG[meta['model']]}={meta['size']}{crop}"
    raise CheckpointError(
        f"weights do not match a {spec}: missing {missing[:3]}, unexpected {[_short(k) for k in extra[:3]]}, "
        f"wrong shape or type {wrong[:3]}"
    )


@torch.no_grad()
def check_outputs(model: nn.Module) -> None:
    """Finite weights can still give NaN or infinite logits (a negative running variance, huge weights)."""
    generator = torch.Generator().manual_seed(0)
    probes = torch.stack(
        [
            torch.zeros(IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8),  # blank paper
            torch.full((IMAGE_SIZE, IMAGE_SIZE), 255, dtype=torch.uint8),  # all ink
            torch.randint(0, 256, (IMAGE_SIZE, IMAGE_SIZE), dtype=torch.uint8, generator=generator),  # noise
        ]
    )
    logits = model(normalize(probes))  # (3, 10)
    if not torch.isfinite(logits).all():
        raise CheckpointError("this model's outputs are NaN or infinite (its weights are finite, but do not work)")


def load_checkpoint(source: Path | str | bytes, *, largest: Mapping[str, int] = LARGEST) -> Checkpoint:
    """Load a checkpoint from a path or bytes; raise `CheckpointError` with a clear message if unusable.

    Everything is checked in order of cost: the file's size, its header, the metadata's fields (a model
    wider than `largest` allows is refused), the header's tensors against the spec computed from the
    metadata, and only then is the model built, filled and run on a few probe images.
    """
    try:
        data = read_bounded(source, MAX_CHECKPOINT_BYTES, "checkpoint")
    except ValueError as err:
        raise CheckpointError(str(err)) from None

    header = _read_header(data)
    meta = _read_metadata(header, largest)
    _check_layout(header, meta)
    try:
        tensors = load_safetensors(data)
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"corrupt or truncated safetensors data: {err}") from None
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"checkpoint holds NaN or infinite weights in {bad[:3]}")
    model = build_model(meta["model"], meta["size"], meta.get("crop", 0))
    model.load_state_dict(tensors, strict=True)
    check_outputs(model.eval())
    return Checkpoint(model, meta)
