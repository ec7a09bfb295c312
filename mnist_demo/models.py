"""The networks: the guide's MLP, fixed, and a small CNN. Both return logits.

python -c "from mnist_demo.models import build_model; print(build_model('cnn'))"
"""

from __future__ import annotations

import torch
from torch import nn

from mnist_demo.data import IMAGE_SIZE, NUM_CLASSES

GUIDE_HIDDEN = 28  # the guide's hidden width: it wrote nn.Linear(28, 28), one unit per pixel of a row
CNN_WIDTH = 32  # channels of the CNN's first block; each later block doubles it
# MNIST centred each digit's ink in a 20 x 20 box, so the outer pixels are almost always blank: 0.23% of
# the training set's ink lies in the outer 2 pixels (tests/test_models.py measures it). A CNN may crop up
# to this many pixels from each border before its first convolution (2 keeps the central 24 x 24).
MAX_CROP = 4


class GuideMLP(nn.Module):
    """The guide's network with its bug fixed: flatten the image so the first layer sees all 784 pixels."""

    def __init__(self, hidden: int = GUIDE_HIDDEN):
        super().__init__()
        self.flatten = nn.Flatten()  # (B, 1, 28, 28) -> (B, 784); the guide fed rows of 28 instead
        self.fc1 = nn.Linear(IMAGE_SIZE * IMAGE_SIZE, hidden)
        self.fc2 = nn.Linear(hidden, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(self.flatten(x))))


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """3x3 conv, then 2x2 max-pool, then batch norm and ReLU.

    Pooling before the normalisation and activation (as airbench does) gives the same kind of network
    but runs BatchNorm and ReLU on a quarter of the pixels, which is most of their cost on a CPU.
    """
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),  # bias is redundant before BN
        nn.MaxPool2d(2),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def pooled_side(crop: int) -> int:
    """Pixels a side left after cropping `crop` from each border and three 2x2 poolings (each rounds down)."""
    return (IMAGE_SIZE - 2 * crop) // 2 // 2 // 2


class SmallCNN(nn.Module):
    """Three conv blocks (28 -> 14 -> 7 -> 3 pixels) and a linear classifier.

    `crop` drops that many pixels from each border first: with 2, the blocks see 24 -> 12 -> 6 -> 3
    pixels, so every layer costs about 27% less and the classifier keeps its size.
    """

    def __init__(self, width: int = CNN_WIDTH, crop: int = 0):
        super().__init__()
        self.crop = crop
        side = pooled_side(crop)
        self.features = nn.Sequential(
            conv_block(1, width),  # (B, w, 14, 14)
            conv_block(width, 2 * width),  # (B, 2w, 7, 7)
            conv_block(2 * width, 4 * width),  # (B, 4w, 3, 3)
        )
        self.classifier = nn.Linear(4 * width * side * side, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.crop:
            x = x[:, :, self.crop : -self.crop, self.crop : -self.crop]
        return self.classifier(self.features(x).flatten(1))


MODELS = {"mlp": GuideMLP, "cnn": SmallCNN}
# The one size argument of each model, as named in configs and checkpoint metadata.
SIZE_ARG = {"mlp": "hidden", "cnn": "width"}
MAX_SIZE = 4096  # refuse absurd widths from command-line configs before allocating them
# The widest models the app trains or loads (MLP hidden units, CNN first-layer channels): they bound a
# visitor's model in memory and the time of each step. Checkpoint metadata is checked against them first.
LARGEST = {"mlp": 1024, "cnn": 64}
COMMAND_LINE_LARGEST = dict.fromkeys(MODELS, MAX_SIZE)  # the command line trains up to MAX_SIZE, so loads as much


def build_model(name: str, size: int | None = None, crop: int = 0) -> nn.Module:
    """Build a model by name ('mlp' or 'cnn'); `size` is the MLP's hidden units or the CNN's width.

    `crop` (CNN only) is the number of border pixels the CNN drops before its first convolution.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_SIZE):
        raise ValueError(f"{SIZE_ARG[name]} must be an integer from 1 to {MAX_SIZE}, got {size!r}")
    if not isinstance(crop, int) or isinstance(crop, bool) or not 0 <= crop <= MAX_CROP:
        raise ValueError(f"crop must be an integer from 0 to {MAX_CROP}, got {crop!r}")
    if crop and name != "cnn":
        raise ValueError(f"only the CNN can crop its input, not the {name}")
    kwargs = {} if size is None else {SIZE_ARG[name]: size}
    return MODELS[name](**kwargs, crop=crop) if crop else MODELS[name](**kwargs)


def expected_layout(name: str, size: int, crop: int = 0) -> dict[str, tuple[str, list[int]]]:
    """{tensor name: (safetensors dtype, shape)} of `build_model(name, size, crop)`'s state dict, by arithmetic.

    Lets a checkpoint's header be compared with its metadata before any model is built (a header that
    claims a wide model costs nothing to refuse). tests/test_models.py checks it against the real models.
    """
    if name == "mlp":
        pixels = IMAGE_SIZE * IMAGE_SIZE
        return {
            "fc1.weight": ("F32", [size, pixels]),
            "fc1.bias": ("F32", [size]),
            "fc2.weight": ("F32", [NUM_CLASSES, size]),
            "fc2.bias": ("F32", [NUM_CLASSES]),
        }
    if name != "cnn":
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    layout: dict[str, tuple[str, list[int]]] = {}
    channels = [1, size, 2 * size, 4 * size]  # as SmallCNN's three conv blocks
    for block, (c_in, c_out) in enumerate(zip(channels, channels[1:])):
        layout[f"features.{block}.0.weight"] = ("F32", [c_out, c_in, 3, 3])  # the conv: no bias
        for stat in ("weight", "bias", "running_mean", "running_var"):  # the batch norm
            layout[f"features.{block}.2.{stat}"] = ("F32", [c_out])
        layout[f"features.{block}.2.num_batches_tracked"] = ("I64", [])
    side = pooled_side(crop)
    layout["classifier.weight"] = ("F32", [NUM_CLASSES, channels[-1] * side * side])
    layout["classifier.bias"] = ("F32", [NUM_CLASSES])
    return layout
