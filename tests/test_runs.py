"""Runs as the app shows them: typed plot frames, whole epochs, streams that hand models back, that can be
closed between any two steps or evaluation chunks, and that never hand over a model whose outputs are not finite.

    python -m pytest tests/test_runs.py
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mnist_demo import cost, limits, runs
from mnist_demo.checkpoint import Checkpoint
from mnist_demo.finetune import FinetuneConfig, FinetuneResult
from mnist_demo.metrics import accuracy
from mnist_demo.models import build_model
from mnist_demo.personal import PersonalSet
from mnist_demo.train import Progress, TrainConfig
from testkit.sketches import draw, sketchpad

SMALL = dataclasses.replace(limits.APP_DEFAULTS, model="mlp", size=16, epochs=2, train_size=640, batch_size=64)


@pytest.fixture
def every_chance(monkeypatch, mnist_test):
    """Every step and every evaluation chunk yields an update (the stream's chances to be closed)."""
    monkeypatch.setattr(runs, "UPDATE_EVERY_S", 0.0)
    evaluated, predict = [], runs.predict_split

    def counted(model, split, device="cpu"):
        evaluated.append(len(split))
        return predict(model, split, device)

    monkeypatch.setattr(runs, "predict_split", counted)
    return evaluated


def test_the_stream_yields_after_every_step_and_every_evaluation_chunk(every_chance, one_thread):
    updates = list(runs.train_stream(SMALL, watch=False))
    steps = SMALL.epochs * SMALL.steps_per_epoch()
    chunk = cost.eval_chunk(SMALL.model, SMALL.size)
    chunks = SMALL.epochs * -(-10_000 // chunk)
    assert every_chance == [chunk] * (chunks // SMALL.epochs) * SMALL.epochs  # the test set, chunk by chunk
    # A step's update each (the epoch's last step brings the model instead), a chunk's each, and the end.
    assert len(updates) == steps + chunks + 1
    assert [u.checkpoint is not None for u in updates].count(True) == SMALL.epochs
    # The plot gets a point at the first update (here the first step), then every log_every steps and at
    # each epoch's end, as the loop gave them.
    assert SMALL.steps_per_epoch() == 10 and SMALL.log_every == 5
    assert updates[-1].losses["step"].tolist() == [1, 6, 10, 15, 20]
    assert updates[-1].results.confusion.sum() == 10_000


def test_closing_the_stream_during_an_evaluation_stops_it_there(every_chance, one_thread):
    stream = runs.train_stream(SMALL, watch=False)
    testing = 0
    for update in stream:
        testing += "testing" in update.status
        if testing == 2:  # one chunk evaluated, the next about to be
            break
    assert len(every_chance) == 1
    stream.close()
    assert len(every_chance) == 1 and stream.gi_frame is None  # closed, and not one more chunk


@pytest.mark.mnist
def test_a_model_whose_outputs_are_not_finite_is_not_handed_over(monkeypatch, one_thread):
    train = runs.train

    def spoiled(config, model, *args, **kwargs):  # finite weights, NaN outputs in eval mode
        for event in train(config, model, *args, **kwargs):
            model.fc1.weight.data[0, 0] = float("inf") if event.step == config.total_steps() else 0.0
            yield event

    monkeypatch.setattr(runs, "train", spoiled)
    with pytest.raises(runs.RunError, match="after epoch 1 gives NaN or infinite outputs"):
        list(runs.train_stream(dataclasses.replace(SMALL, epochs=1), watch=False))


@pytest.mark.mnist
def test_a_diverged_loss_stops_the_run_with_a_clear_message(monkeypatch):
    def diverging(config, model, *args, **kwargs):
        yield Progress(1, 10, 1, 2.3, 100.0, 0.1, 0.1)
        yield Progress(2, 10, 1, float("nan"), 100.0, 0.2, 0.2)

    monkeypatch.setattr(runs, "train", diverging)
    with pytest.raises(runs.RunError, match="diverged at step 2: the loss became nan; try a lower learning rate"):
        list(runs.train_stream(SMALL, watch=False))


@pytest.fixture
def one_drawing():
    drawings = PersonalSet()
    drawings.add(sketchpad(draw("3")), 3)
    return drawings


def test_fine_tuning_refuses_a_result_whose_outputs_are_not_finite(monkeypatch, one_drawing):
    broken = build_model("cnn", 4).eval()
    with torch.no_grad():
        broken.features[0][2].running_var.fill_(-1.0)  # finite, but sqrt(var + eps) is NaN
    result = FinetuneResult(Checkpoint(broken, {"model": "cnn", "size": 4}), 0.5, 1.0, 1, False, 0.9, 0.9, 1, 0.1)
    monkeypatch.setattr(runs, "finetune", lambda *args, **kwargs: iter([result]))
    with pytest.raises(runs.RunError, match="fine-tuned model gives NaN or infinite outputs, so it is not kept"):
        list(runs.finetune_stream(Checkpoint(build_model("cnn", 4), {}), one_drawing, "the CNN"))


def test_fine_tuning_stops_when_its_loss_is_not_finite(monkeypatch, one_drawing):
    diverged = Progress(1, 5, 1, float("inf"), 1.0, 0.1, 0.1)
    monkeypatch.setattr(runs, "finetune", lambda *args, **kwargs: iter([diverged]))
    with pytest.raises(runs.RunError, match="fine-tuning diverged at step 1"):
        list(runs.finetune_stream(Checkpoint(build_model("cnn", 4), {}), one_drawing, "the CNN"))


def test_the_step_estimate_refuses_what_would_make_a_stop_wait():
    widest = limits.MAX_SIZE["cnn"]
    with pytest.raises(ValueError, match=r"would take about 4\.\d s on one core.*use a batch of at most 32"):
        limits.app_config(model="cnn", size=widest, batch_size=limits.MAX_BATCH_SIZE)
    assert limits.app_config(model="cnn", size=widest, batch_size=32).batch_size == 32
    assert limits.app_config(model="mlp", size=limits.MAX_SIZE["mlp"], batch_size=limits.MAX_BATCH_SIZE)
    assert cost.step_seconds(**{"model": "cnn", "size": 16, "batch_size": 128}) < cost.MAX_STEP_S  # the defaults


@pytest.mark.parametrize("model, size", [("mlp", 28), ("mlp", 1024), ("cnn", 8), ("cnn", 64)])
def test_the_mac_count_is_the_models_own(model, size):
    """forward_macs against the layers' shapes, counted by hooks on a real forward pass."""
    net, macs = build_model(model, size), []

    def count(module, inputs, output):
        if isinstance(module, torch.nn.Linear):
            macs.append(module.in_features * module.out_features)
        elif isinstance(module, torch.nn.Conv2d):
            macs.append(output[0].numel() * module.in_channels * module.kernel_size[0] * module.kernel_size[1])

    for layer in net.modules():
        layer.register_forward_hook(count)
    net.eval()(torch.zeros(1, 1, 28, 28))
    assert cost.forward_macs(model, size) == sum(macs)


def test_a_config_the_app_refuses_is_not_a_train_config_problem():
    """The cap is the app's (limits.app_config): the command line trains what it likes."""
    assert TrainConfig(model="cnn", size=64, batch_size=512)


def test_frames_are_typed_even_when_empty():
    assert dict(runs.loss_table([]).dtypes) == {"step": np.dtype("int64"), "loss": np.dtype("float64")}
    frame = runs.accuracy_table([(1, 97.25), (2, 98.5)])
    assert list(frame["epoch"]) == ["1", "2"]  # categories: the axis shows whole epochs only
    assert runs.accuracy_range(frame) == [96.0, 100.0] and runs.accuracy_range(runs.accuracy_table([])) == [89.0, 100.0]


def test_describe():
    config = TrainConfig(model="cnn", size=0, epochs=1, train_size=1_000)
    assert runs.describe(config) == "CNN, 32 channels, 1 epoch of 1,000 images"


@pytest.mark.mnist
def test_train_stream_hands_each_epochs_model_back_and_ends_with_results(mnist_train, mnist_test):
    config = TrainConfig(model="mlp", size=8, epochs=2, batch_size=64, train_size=640, log_every=2)
    probe = np.zeros((28, 28), np.uint8)
    updates = list(runs.train_stream(config, probe))
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
    updates = list(runs.train_stream(config, watch=False))
    assert all(u.frame is None for u in updates) and updates[0].losses.shape[0] >= 1
    assert updates[-1].status.startswith("done")


def test_finetune_stream_refuses_an_empty_set_before_its_first_update(models):
    stream = runs.finetune_stream(models.pick("cnn", None), PersonalSet(), "the CNN", FinetuneConfig())
    with pytest.raises(ValueError, match="add some drawings"):
        next(stream)
