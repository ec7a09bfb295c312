"""The IDX reader, the in-memory splits, batching and augmentation."""

from __future__ import annotations

import struct

import pytest
import torch

from mnist_demo import data
from mnist_demo.data import (
    IMAGE_SIZE,
    MNIST_MEAN,
    MNIST_STD,
    NUM_CLASSES,
    MNISTNotFoundError,
    Split,
    augment,
    batches,
    load_mnist,
    normalize,
    read_idx,
)


def write_idx(path, array: torch.Tensor) -> None:
    """Write `array` (uint8) as an IDX file, the format MNIST ships in."""
    header = bytes([0, 0, 0x08, array.dim()]) + b"".join(struct.pack(">I", s) for s in array.shape)
    path.write_bytes(header + array.contiguous().numpy().tobytes())


def write_fake_mnist(root, n_train=50, n_test=20) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    for train, n in ((True, n_train), (False, n_test)):
        images_name, labels_name = data.SPLIT_FILES[train]
        write_idx(raw / images_name, torch.randint(0, 256, (n, IMAGE_SIZE, IMAGE_SIZE), generator=g, dtype=torch.uint8))
        write_idx(raw / labels_name, torch.arange(n, dtype=torch.uint8) % NUM_CLASSES)


def test_read_idx_round_trip(tmp_path):
    array = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8)
    write_idx(tmp_path / "x", array)
    assert torch.equal(read_idx(tmp_path / "x", ndim=3), array)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b[:-5], "truncated"),
        (lambda b: b + b"\0", "truncated or padded"),
        (lambda b: b"\x01" + b[1:], "magic"),
        (lambda b: b[:3] + b"\x02" + b[4:], "3-d"),
        (lambda b: b[:6], "magic"),
    ],
)
def test_read_idx_refuses_corrupt_files(tmp_path, damage, message):
    write_idx(tmp_path / "x", torch.zeros(2, 28, 28, dtype=torch.uint8))
    (tmp_path / "x").write_bytes(damage((tmp_path / "x").read_bytes()))
    with pytest.raises(ValueError, match=message):
        read_idx(tmp_path / "x", ndim=3)


def test_load_mnist_reads_a_root_once(tmp_path):
    write_fake_mnist(tmp_path)
    train = load_mnist(train=True, root=tmp_path)
    assert train.images.shape == (50, 28, 28) and train.images.dtype == torch.uint8
    assert train.labels.dtype == torch.int64 and train.labels.tolist()[:11] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0]
    assert load_mnist(train=True, root=tmp_path) is train  # cached: read once per process
    assert len(load_mnist(train=False, root=tmp_path)) == 20


def test_root_comes_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_ROOT", str(tmp_path))
    assert data.mnist_root() == tmp_path
    monkeypatch.delenv("MNIST_ROOT")
    assert str(data.mnist_root()) == "data"


def test_missing_files_give_a_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets

    def no_network(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(torchvision.datasets, "MNIST", no_network)
    with pytest.raises(MNISTNotFoundError) as err:
        load_mnist(train=False, root=tmp_path / "nowhere")
    message = str(err.value)
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        "MNIST_ROOT",
        str(tmp_path / "nowhere" / "MNIST" / "raw"),
    ):
        assert name in message


def test_corrupt_labels_are_refused(tmp_path):
    write_fake_mnist(tmp_path)
    labels = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    write_idx(labels, torch.full((20,), 12, dtype=torch.uint8))
    with pytest.raises(ValueError, match="labels"):
        load_mnist(train=False, root=tmp_path)


def test_batches_cover_every_image_once_and_reproducibly():
    split = Split(torch.arange(10, dtype=torch.uint8).view(10, 1, 1).expand(10, 28, 28), torch.arange(10))
    order = [y for _, ys in batches(split, 3, torch.Generator().manual_seed(1)) for y in ys.tolist()]
    again = [y for _, ys in batches(split, 3, torch.Generator().manual_seed(1)) for y in ys.tolist()]
    assert sorted(order) == list(range(10)) and order == again and order != list(range(10))
    for images, labels in batches(split, 4):  # images travel with their labels
        assert torch.equal(images[:, 0, 0].long(), labels)


def test_normalize_uses_the_named_constants():
    x = normalize(torch.full((2, 28, 28), 255, dtype=torch.uint8))
    assert x.shape == (2, 1, 28, 28)
    assert torch.allclose(x, torch.tensor((1 - MNIST_MEAN) / MNIST_STD))
    assert torch.allclose(normalize(torch.ones(1, 1, 28, 28)), x[:1])  # [0, 1] floats give the same


def test_augment_is_seeded_small_and_keeps_ink(mnist_test):
    x = mnist_test.images[:256].unsqueeze(1).float() / 255
    a = augment(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, augment(x, torch.Generator().manual_seed(0)))
    assert not torch.equal(a, x)
    ink_ratio = a.sum(dim=(1, 2, 3)) / x.sum(dim=(1, 2, 3))
    # Changed, but still the same digit's ink: thin strokes lose most to erosion, so the bound is loose.
    assert ink_ratio.min() > 0.3 and ink_ratio.max() < 2.5 and 0.8 < ink_ratio.median() < 1.25


@pytest.mark.mnist
def test_real_mnist_matches_its_published_statistics(mnist_train, mnist_test):
    assert len(mnist_train) == 60_000 and len(mnist_test) == 10_000
    pixels = mnist_train.images.float() / 255
    assert pixels.mean().item() == pytest.approx(MNIST_MEAN, abs=1e-4)
    assert pixels.std().item() == pytest.approx(MNIST_STD, abs=1e-4)
    assert torch.bincount(mnist_test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
