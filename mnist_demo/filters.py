"""What the first layer learned: the MLP's hidden units as 28x28 weight images, the CNN's 3x3 filters and
what they respond to in a drawing. Arrays only; `mnist_demo.render.tiles` makes them pictures.

Untrained, every one of them is noise; after an epoch the MLP's units look like blurred strokes and
parts of digits, and the CNN's filters like edge and stroke detectors. `first_layer` is small enough
to keep one per epoch (the training map's replay does, in `mnist_demo.replay`).

    python -c "from mnist_demo.checkpoint import load_checkpoint as l; from mnist_demo.filters import first_layer;\
 print(first_layer(l('weights/mlp-guide.safetensors').model).shape)"
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mnist_demo.data import IMAGE_SIZE, normalize
from mnist_demo.models import GuideMLP, SmallCNN
from mnist_demo.render import tiles

MAX_UNITS = 64  # hidden units shown for a wide MLP: the first ones, so the same units are watched each epoch


def first_layer(model: nn.Module) -> np.ndarray:
    """The first layer's weights as pictures: MLP (units, 28, 28), CNN (channels, 3, 3); float16 copies.

    A wide MLP shows its first `MAX_UNITS` units.
    """
    if isinstance(model, GuideMLP):
        weight = model.fc1.weight[:MAX_UNITS].reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    elif isinstance(model, SmallCNN):
        weight = model.features[0][0].weight[:, 0]  # (w, 1, 3, 3) -> (w, 3, 3)
    else:
        raise TypeError(f"not a model of this package: {type(model).__name__}")
    return weight.detach().to("cpu", torch.float16).numpy().copy()


def crop_of(model: nn.Module) -> int:
    """Border pixels the model drops before its first layer (0 for the MLP)."""
    return getattr(model, "crop", 0)


def responses(kernels: np.ndarray, image: np.ndarray, crop: int = 0) -> np.ndarray:
    """The first convolution's output on one drawing: kernels (w, 3, 3), image (28, 28) uint8 -> (w, s, s).

    s = 28 - 2 * crop: the CNN's conv sees the cropped image, padded by one pixel as in `conv_block`.
    This is the layer's output before pooling and batch norm, so each map shows where its filter's
    pattern is in the drawing (positive) or its opposite (negative), at full resolution. The constant
    response to blank paper is taken off (the batch norm after it removes such offsets anyway), so
    paper stays at zero and only the strokes light up.
    """
    if kernels.ndim != 3 or kernels.shape[1:] != (3, 3):
        raise ValueError(f"expected kernels (w, 3, 3), got {kernels.shape}")
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"expected a (28, 28) image, got {image.shape}")
    paper = normalize(torch.zeros(1, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8))
    x = normalize(torch.from_numpy(np.ascontiguousarray(image))[None]) - paper  # (1, 1, 28, 28): ink only
    if crop:
        x = x[:, :, crop:-crop, crop:-crop]
    weight = torch.from_numpy(kernels.astype(np.float32))[:, None]  # (w, 1, 3, 3)
    return F.conv2d(x, weight, padding=1)[0].numpy()


UNIT_SCALE = 3  # screen pixels per weight of an MLP unit: 64 units make a 700-pixel-wide grid
FILTER_SCALE = 14  # per weight of a 3x3 filter: each filter a 42-pixel square
RESPONSE_SCALE = 2  # per pixel of a response map


def picture(layer: np.ndarray, image: np.ndarray | None = None, crop: int = 0) -> np.ndarray:
    """The first layer as one uint8 RGB grid: an MLP's units, or a CNN's filters' responses to `image`
    (a (28, 28) uint8 drawing) when there is one, else the CNN's 3x3 filters themselves."""
    layer = np.asarray(layer, np.float32)
    if layer.shape[1:] == (3, 3):
        if image is not None:
            return tiles(responses(layer, image, crop), RESPONSE_SCALE)
        return tiles(layer, FILTER_SCALE, gap=4)
    return tiles(layer, UNIT_SCALE)
