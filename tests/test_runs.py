"""Runs as the app shows them: typed plot frames, whole epochs, and streams that hand models back."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_demo.finetune import FinetuneConfig
from mnist_demo.metrics import accuracy
from mnist_demo.personal import PersonalSet
from mnist_demo.runs import accuracy_range, accuracy_table, describe, finetune_stream, loss_table, train_stream
from mnist_demo.train import TrainConfig


def test_frames_are_typed_even_when_empty():
    assert dict(loss_table([]).dtypes) == {"step": np.dtype("int64"), "loss": np.dtype("float64")}
    frame = accuracy_table([(1, 97.25), (2, 98.5)])
    assert list(frame["epoch"]) == ["1", "2"]  # categories: the axis shows whole epochs only
    assert accuracy_range(frame) == [96.0, 100.0] and accuracy_range(accuracy_table([])) == [89.0, 100.0]


def test_describe():
    config = TrainConfig(model="cnn", size=0, epochs=1, train_size=1_000)
    assert describe(config) == "CNN, 32 channels, 1 epoch of 1,000 images"


@pytest.mark.mnist
def test_train_stream_hands_each_epochs_model_back_and_ends_with_results(mnist_train, mnist_test):
    config = TrainConfig(model="mlp", size=8, epochs=2, batch_size=64, train_size=640, log_every=2)
    probe = np.zeros((28, 28), np.uint8)
    updates = list(train_stream(config, probe))
    models = [u.checkpoint for u in updates if u.checkpoint is not None]
    assert len(models) == 2 and models[0] is not models[1]  # a frozen copy per epoch, not the model in training
    assert all(not p.requires_grad for p in models[-1].model.parameters())
    assert updates[-1].results.confusion.sum() == 10_000 and updates[-1].status.startswith("done")
    assert all(u.probe is not None and abs(sum(u.probe.values()) - 1) < 1e-5 for u in updates)
    assert list(updates[-1].accuracies["epoch"]) == ["1", "2"]
    assert updates[-1].losses["step"].is_monotonic_increasing
    # The map before the first step, then with each epoch's model; accuracy still over all 10,000 digits.
    frames = [u.frame for u in updates if u.frame is not None]
    assert [f.epoch for f in frames] == [0, 1, 2] and updates[0].frame is frames[0] and updates[0].checkpoint is None
    assert [u.frame for u in updates if u.checkpoint is not None] == frames[1:]
    assert all(abs(accuracy(m.model, mnist_test) - m.test_accuracy) < 1e-6 for m in models)
    assert [f.test_accuracy for f in frames[1:]] == [m.test_accuracy for m in models]
    assert np.array_equal(
        np.bincount(updates[-1].results.predictions, minlength=10), updates[-1].results.confusion.sum(0)
    )


@pytest.mark.mnist
def test_train_stream_without_the_map_has_no_frames(mnist_train, mnist_test):
    config = TrainConfig(model="mlp", size=8, epochs=1, batch_size=64, train_size=320, log_every=2)
    updates = list(train_stream(config, watch=False))
    assert all(u.frame is None for u in updates) and updates[0].losses.shape[0] >= 1
    assert updates[-1].status.startswith("done")


def test_finetune_stream_refuses_an_empty_set_before_its_first_update(models):
    stream = finetune_stream(models.pick("cnn", None), PersonalSet(), "the CNN", FinetuneConfig())
    with pytest.raises(ValueError, match="add some drawings"):
        next(stream)
