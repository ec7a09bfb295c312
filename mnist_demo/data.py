"""MNIST, held in memory: named dataset constants, the IDX reader, batching and batch augmentation.

Each split is read once per process into uint8 tensors (60,000 x 28 x 28 is 47 MB) and batches are cut
from memory with an explicit `torch.Generator`, as airbench does: no per-sample PIL transforms and no
worker processes. The files are looked for under `$MNIST_ROOT`, else `./data`, in torchvision's layout
(`<root>/MNIST/raw/`); when they are missing, torchvision downloads them if the network allows.

    python -c "from mnist_demo.data import load_mnist; print(load_mnist(train=False).images.shape)"
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

# Dataset facts, named once: training and drawing must normalise identically.
IMAGE_SIZE = 28  # MNIST images are 28 x 28 pixels
NUM_CLASSES = 10  # the digits 0-9
MNIST_MEAN = 0.1307  # mean of the training pixels scaled to [0, 1]
MNIST_STD = 0.3081  # their standard deviation
DIGIT_BOX = 20  # MNIST scaled each digit's ink to fit a 20 x 20 box inside the 28 x 28 image

DEFAULT_ROOT = "data"
ROOT_ENV = "MNIST_ROOT"
SPLIT_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_DTYPE_UBYTE = 0x08  # the only element type MNIST uses
MNIST_TRAIN_SIZE = 60_000  # images in MNIST's training split


class MNISTNotFoundError(FileNotFoundError):
    """The MNIST files are not on disk and could not be downloaded."""


@dataclass(frozen=True)
class Split:
    """One MNIST split in memory: uint8 images (N, 28, 28) and int64 labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int) -> Split:
        """The first `n` examples, as views (no copy)."""
        return Split(self.images[:n], self.labels[:n])

    @property
    def device(self) -> torch.device:
        return self.images.device

    def to(self, device: torch.device | str) -> Split:
        """The split on `device`: itself when already there, else one copy of each tensor (47 MB for the
        training images, which a GPU then holds for the whole run instead of receiving every batch)."""
        if self.device == torch.device(device):
            return self
        return Split(self.images.to(device), self.labels.to(device))


def mnist_root() -> Path:
    """Where MNIST lives: `$MNIST_ROOT`, else `./data`."""
    return Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


def raw_dir(root: Path) -> Path:
    return Path(root) / "MNIST" / "raw"


def read_idx(path: Path, ndim: int) -> torch.Tensor:
    """Read an uncompressed IDX file of unsigned bytes with `ndim` dimensions, checking its header."""
    data = Path(path).read_bytes()
    header = 4 + 4 * ndim
    if len(data) < header or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    if data[2] != _IDX_DTYPE_UBYTE or data[3] != ndim:
        raise ValueError(f"{path}: expected {ndim}-d unsigned bytes, header says type {data[2]:#x}, {data[3]}-d")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = math.prod(shape)
    if len(data) - header != expected:
        raise ValueError(
            f"{path} is truncated or padded: header says {shape} = {expected} bytes, found {len(data) - header}"
        )
    return torch.frombuffer(bytearray(data), dtype=torch.uint8, offset=header).reshape(shape)


def _missing_message(root: Path, why: str) -> str:
    names = ", ".join(f for pair in SPLIT_FILES.values() for f in pair)
    return (
        f"MNIST was not found under {raw_dir(root)} and could not be downloaded ({why}). "
        f"Put the four uncompressed IDX files ({names}) in {raw_dir(root)}/, "
        f"or set {ROOT_ENV} to the folder that holds MNIST/raw/."
    )


def _ensure_files(root: Path) -> None:
    """Download MNIST with torchvision when any of its four files is missing."""
    folder = raw_dir(root)
    if all((folder / f).is_file() for pair in SPLIT_FILES.values() for f in pair):
        return
    try:
        from torchvision.datasets import MNIST

        MNIST(root=str(root), train=True, download=True)
        MNIST(root=str(root), train=False, download=True)
    except Exception as err:  # no network, read-only disk, mirror down: all end the same way for a user
        raise MNISTNotFoundError(_missing_message(root, f"{type(err).__name__}: {err}")) from err


@functools.lru_cache(maxsize=4)
def _load_cached(root: Path, train: bool) -> Split:
    _ensure_files(root)
    images_file, labels_file = SPLIT_FILES[train]
    images = read_idx(raw_dir(root) / images_file, ndim=3)
    labels = read_idx(raw_dir(root) / labels_file, ndim=1).long()
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or len(images) != len(labels):
        raise ValueError(
            f"MNIST files under {raw_dir(root)} disagree: images {tuple(images.shape)}, labels {tuple(labels.shape)}"
        )
    if int(labels.max()) >= NUM_CLASSES:
        raise ValueError(f"MNIST labels under {raw_dir(root)} go beyond {NUM_CLASSES - 1}")
    return Split(images, labels)


def load_mnist(train: bool, root: Path | str | None = None) -> Split:
    """One MNIST split, read from disk once per process and shared read-only afterwards."""
    return _load_cached(Path(root) if root is not None else mnist_root(), bool(train))


def mnist_available(root: Path | str | None = None) -> bool:
    """True when all four MNIST files are already on disk (no download attempted)."""
    folder = raw_dir(Path(root) if root is not None else mnist_root())
    return all((folder / f).is_file() for pair in SPLIT_FILES.values() for f in pair)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 or [0, 1] images -> float tensors normalised with MNIST's mean and std, with a channel axis."""
    x = images.float()
    if images.dtype == torch.uint8:
        x = x / 255.0
    if x.dim() == 3:  # (B, 28, 28) -> (B, 1, 28, 28)
        x = x.unsqueeze(1)
    return (x - MNIST_MEAN) / MNIST_STD


def batches(
    split: Split,
    batch_size: int,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    indices: torch.Tensor | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (uint8 images (B, 28, 28), labels (B,)) on `device`, shuffled when a generator is given.

    `indices` restricts the batches to a subset without copying the split: only one batch at a time is
    ever gathered, and images stay uint8 until the caller normalises them. A split already on `device`
    (`Split.to`) is cut there: the shuffled order is its one copy per epoch, no batch is copied.
    """
    order = indices if indices is not None else torch.arange(len(split))
    if generator is not None:  # a CPU generator: the same order on every device and every process
        order = order[torch.randperm(len(order), generator=generator)]
    order = order.to(split.device)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        yield split.images[idx].to(device, non_blocking=True), split.labels[idx].to(device, non_blocking=True)


# Augmentation ranges: drawn digits differ from MNIST's mostly by small rotations, slant, size,
# position and stroke weight, so those are what we vary. Kept small so that a 6 never becomes a 9.
MAX_ROTATION_DEG = 12.0
MAX_SHEAR = 0.2
SCALE_RANGE = (0.85, 1.1)
MAX_SHIFT_PX = 2.0
STROKE_CHANGE_P = 0.5  # share of a batch whose strokes get thicker or thinner
MAX_THICKENING = 1.0  # blend weight towards a full 3x3 dilation
MAX_THINNING = 0.5  # blend weight towards a full 3x3 erosion


def to_device(values: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Random numbers drawn on the CPU (so every device sees the same) sent to `device` without waiting: a
    copy from ordinary memory to a GPU would wait for all the work queued before it, at every batch."""
    if device.type != "cuda":
        return values.to(device)
    return values.pin_memory().to(device, non_blocking=True)


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Randomly rotate, shear, scale, shift and thicken/thin a batch of images in [0, 1].

    images: (B, 1, 28, 28) float in [0, 1] -> same shape. One random affine per image, applied to the
    whole batch with a single `grid_sample`; stroke weight changes by a 3x3 max-pool (dilation) or
    min-pool (erosion), blended so that the change is a fraction of a pixel.
    """
    b, device = images.shape[0], images.device

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return to_device(torch.rand(b, generator=generator) * (hi - lo) + lo, device)

    angle = torch.deg2rad(uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG))
    shear = uniform(-MAX_SHEAR, MAX_SHEAR)
    scale = uniform(*SCALE_RANGE)
    shift = uniform(-MAX_SHIFT_PX, MAX_SHIFT_PX), uniform(-MAX_SHIFT_PX, MAX_SHIFT_PX)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin + shear * cos, shift[0] * 2 / IMAGE_SIZE], dim=1),
            torch.stack([sin, cos + shear * sin, shift[1] * 2 / IMAGE_SIZE], dim=1),
        ],
        dim=1,
    )  # (B, 2, 3): maps output coordinates to input coordinates
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    # Stroke weight: blend towards a 3x3 dilation (weight > 0) or erosion (weight < 0). Erosion is
    # capped lower because a full one erases MNIST's thinnest strokes.
    weight = uniform(-MAX_THINNING, MAX_THICKENING)
    changed = to_device(torch.rand(b, generator=generator), device) < STROKE_CHANGE_P
    weight = torch.where(changed, weight, 0.0).view(b, 1, 1, 1)
    thicker = F.max_pool2d(out, 3, stride=1, padding=1)
    thinner = -F.max_pool2d(-out, 3, stride=1, padding=1)
    return out + weight.clamp(min=0) * (thicker - out) + (-weight).clamp(min=0) * (thinner - out)
