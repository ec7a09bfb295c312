"""Models for the page: any network of this package as a small JSON header plus float32 weights.

`page_model(model)` turns a GuideMLP or SmallCNN (shipped, trained in the app, fine-tuned or uploaded) into
what `mnist_demo/web/net.js` runs: a header naming each layer in order with its sizes and where its
tensors lie in one float32 little-endian array, and that array (base64 in `PageModel.payload()`, since it
travels as JSON). Batch norm is folded away (see `_fold`), so the page runs conv, max-pool, per-channel
affine, ReLU and linear layers only. `run_page_model` is the same forward pass in torch, read from the
format alone: the unit tests check the folding with it, and the browser tests check net.js against torch.

`page_model(model, subspace)` also carries the "residual" score's subspace (`mnist_demo.residual`, for a
checkpoint whose "not a digit" rule is that score): its mean and basis follow the network's tensors in the
same array, and the header's "residual" block says where. net.js then returns each drawing's residual
as `residual.Subspace.residual` computes it; `page_residual` is that step in torch, from the format alone.

    python -c "from mnist_demo.webmodel import page_model; from mnist_demo.checkpoint import load_checkpoint as l; \
print(page_model(l('weights/cnn.safetensors').model).header)"
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mnist_demo.checkpoint import model_spec
from mnist_demo.data import IMAGE_SIZE, MNIST_MEAN, MNIST_STD, NUM_CLASSES
from mnist_demo.models import GuideMLP, SmallCNN
from mnist_demo.residual import Subspace

FORMAT = "mnist-demo-page/1"  # net.js refuses any other; bump when the layer list or layout changes
HASH_CHARS = 32  # hex digits of SHA-256 kept as the cache key (128 bits: no accidental collision)
# The page keeps every model it is sent; past this many weights (16 MB of float32, 22 MB as base64) a
# network is too big to send per visitor and the server reads for it. The shipped CNN has 104,426 (and
# 38,016 more with its residual's subspace); the widest MLP the app can train (4096 hidden units) 3.3 million.
MAX_PAGE_FLOATS = 4 * 1024 * 1024


class PageModelError(ValueError):
    """A model that cannot run in the page, with a message fit to show a person."""


@dataclass(frozen=True)
class PageModel:
    """One network in the page's format: `header` (JSON-able) and its weights, float32 (N,) in one array."""

    header: dict[str, Any]
    weights: np.ndarray

    @property
    def hash(self) -> str:
        return self.header["hash"]

    def payload(self) -> dict[str, Any]:
        """What travels to the page as JSON: the header and the weights' little-endian bytes in base64."""
        data = self.weights.astype("<f4", copy=False).tobytes()
        return {"header": self.header, "weights": base64.b64encode(data).decode("ascii")}


def page_model(model: nn.Module, subspace: Subspace | None = None) -> PageModel:
    """`model` (eval semantics: batch norm uses its running statistics) in the page's format, with the
    residual score's `subspace` of its features when given (its mean and basis, as float32)."""
    kind, size, crop = model_spec(model)  # TypeError for anything that is not one of our models
    count = sum(p.numel() for p in model.parameters())
    count += subspace.features * (subspace.rank + 1) if subspace is not None else 0
    if count > MAX_PAGE_FLOATS:
        raise PageModelError(
            f"this {kind} has {count:,} weights, too many to send to the page (at most {MAX_PAGE_FLOATS:,}); "
            "the server reads for it instead"
        )
    tensors: list[np.ndarray] = []
    offset = 0

    def place(t: torch.Tensor) -> dict[str, Any]:
        """Append `t` to the weights; its reference in the header."""
        nonlocal offset
        array = t.detach().to("cpu", torch.float32).contiguous().numpy().ravel()  # any memory format in
        tensors.append(array)
        ref = {"offset": offset, "shape": list(t.shape)}
        offset += array.size
        return ref

    with torch.no_grad():
        layers = _mlp_layers(model, place) if isinstance(model, GuideMLP) else _cnn_layers(model, place)
    features = layers[-1]["in"]
    residual = None
    if subspace is not None:
        if subspace.features != features:
            raise PageModelError(
                f"the residual's subspace is of {subspace.features} features; this {kind} has {features}"
            )
        residual = {
            "features": features,
            "rank": subspace.rank,
            "mean": place(subspace.mean),  # float64 holding float32 values: placed exactly
            "basis": place(subspace.basis),  # (features, rank), row-major
        }
    weights = np.concatenate(tensors).astype(np.float32)
    if not np.isfinite(weights).all():
        raise PageModelError("this model holds NaN or infinite weights; it cannot be read in the page")
    header: dict[str, Any] = {
        "format": FORMAT,
        "kind": kind,
        "size": size,
        "crop": crop,
        "input": [1, IMAGE_SIZE, IMAGE_SIZE],  # one normalised image, (C, H, W), row-major
        "classes": NUM_CLASSES,
        "normalization": {"mean": MNIST_MEAN, "std": MNIST_STD},  # the page normalises with these, not its own
        "features": features,  # the classifier's input, returned by the page for the map
        "layers": layers,
        "floats": int(weights.size),
    }
    if residual is not None:  # absent otherwise: the hashes of pages without one stay as they were
        header["residual"] = residual
    header["hash"] = _content_hash(header, weights)
    return PageModel(header, weights)


def _content_hash(header: dict[str, Any], weights: np.ndarray) -> str:
    """Hex SHA-256 of the header and the weights, shortened: equal models share it, any change alters it."""
    digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    digest.update(weights.astype("<f4", copy=False).tobytes())
    return digest.hexdigest()[:HASH_CHARS]


def _linear(layer: nn.Linear, place) -> dict[str, Any]:
    return {
        "op": "linear",
        "in": layer.in_features,
        "out": layer.out_features,
        "weight": place(layer.weight),  # (out, in), row-major
        "bias": place(layer.bias),
    }


def _mlp_layers(model: GuideMLP, place) -> list[dict[str, Any]]:
    # Flatten is free: the page holds the image as (C, H, W) row-major, which is flattening's order.
    return [_linear(model.fc1, place), {"op": "relu"}, _linear(model.fc2, place)]


def _cnn_layers(model: SmallCNN, place) -> list[dict[str, Any]]:
    layers: list[dict[str, Any]] = [{"op": "crop", "pixels": model.crop}] if model.crop else []
    for block in model.features:
        conv, _, bn, _ = block  # conv -> maxpool -> batch norm -> ReLU (models.conv_block)
        weight, sign, shift = _fold(conv.weight, bn)
        layers += [
            {"op": "conv3x3", "in": conv.in_channels, "out": conv.out_channels, "weight": place(weight)},
            {"op": "maxpool2"},
            {"op": "affine", "channels": conv.out_channels, "scale": place(sign), "shift": place(shift)},
            {"op": "relu"},
        ]
    return layers + [_linear(model.classifier, place)]


def _fold(weight: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fold batch norm, which follows max-pooling here, into the convolution before the pooling.

    Batch norm is y = s * x + t per channel. Scaling by s commutes with max-pooling only when s >= 0 (for
    s < 0 the max of s * x is s times the *min* of x), so the conv takes |s| and the sign stays behind,
    after the pooling: y = sign(s) * maxpool(conv(x; |s| W)) + t. Returns (|s| W, sign(s), t).
    """
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (C,)
    t = bn.bias - bn.running_mean * s
    sign = torch.where(s < 0, -1.0, 1.0)
    return weight * s.abs()[:, None, None, None], sign, t


def _tensor(weights: torch.Tensor, ref: dict[str, Any]) -> torch.Tensor:
    n = int(np.prod(ref["shape"]))
    return weights[ref["offset"] : ref["offset"] + n].reshape(ref["shape"])


def run_page_model(page: PageModel, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The page's forward pass in torch, from the format alone: (B, 1, 28, 28) -> (logits (B, 10), features).

    `features` (B, header["features"]) is the classifier's input: the CNN's flattened last block, the
    MLP's hidden layer after ReLU. net.js does exactly these steps, layer by layer.
    """
    weights = torch.from_numpy(page.weights)
    h = x.float()
    features = h
    for layer in page.header["layers"]:
        op = layer["op"]
        if op == "crop":
            c = layer["pixels"]
            h = h[:, :, c:-c, c:-c]
        elif op == "conv3x3":
            h = F.conv2d(h, _tensor(weights, layer["weight"]), padding=1)
        elif op == "maxpool2":
            h = F.max_pool2d(h, 2)
        elif op == "affine":
            h = h * _tensor(weights, layer["scale"])[:, None, None] + _tensor(weights, layer["shift"])[:, None, None]
        elif op == "relu":
            h = torch.relu(h)
        elif op == "linear":
            features = h = h.flatten(1)
            h = F.linear(h, _tensor(weights, layer["weight"]), _tensor(weights, layer["bias"]))
        else:
            raise PageModelError(f"unknown layer {op!r} in a page model")
    return h, features


def page_residual(page: PageModel, features: torch.Tensor) -> torch.Tensor | None:
    """The residual (B,) float64 of features (B, F) off the subspace `page` carries, as net.js computes it
    and as `residual.Subspace.residual` does; None for a page without one."""
    block = page.header.get("residual")
    if block is None:
        return None
    weights = torch.from_numpy(page.weights)
    mean, basis = _tensor(weights, block["mean"]).double(), _tensor(weights, block["basis"]).double()
    z = features.double() - mean
    return (z - (z @ basis) @ basis.T).norm(dim=1)
