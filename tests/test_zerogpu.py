"""ZeroGPU readiness: the decorator is a no-op off ZeroGPU, durations follow the settings within a cap, and
training run as ZeroGPU runs it (forked, pickled) hands its models back on the CPU.

    MNIST_ROOT=../shared/data python -m pytest tests/test_zerogpu.py
"""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
import torch

from mnist_demo import limits, zerogpu
from mnist_demo.finetune import FinetuneConfig
from mnist_demo.session import Visitor
from mnist_demo.train import TrainConfig
from testkit.zerogpu import cuda_tensors, run_forked
from ui.train import TrainHandlers, train_where_the_gpu_is

TINY = dataclasses.replace(limits.APP_DEFAULTS, size=4, epochs=2, train_size=256, batch_size=64)


def train_estimate(config: TrainConfig, probe=None) -> float:
    return zerogpu.train_seconds(config)


def train_on_gpu(config: TrainConfig, probe=None):
    """The app's training function (`spaces.GPU` is a no-op here), as a plain generator to run forked."""
    yield from train_where_the_gpu_is(config, probe)


@pytest.fixture
def off_zerogpu(monkeypatch):
    monkeypatch.delenv(zerogpu.ZERO_GPU_ENV, raising=False)


def test_spaces_is_installed_and_its_decorator_does_nothing_here(off_zerogpu):
    import spaces

    def plain(x):
        return x

    def generator(x):
        yield x

    assert not zerogpu.on_zerogpu()
    assert spaces.GPU(plain) is plain and spaces.GPU(duration=10)(generator) is generator
    assert zerogpu.gpu(train_estimate)(plain) is plain and zerogpu.gpu(train_estimate)(generator) is generator


def test_zerogpu_is_recognised_as_spaces_does(monkeypatch):
    for value, expected in [("true", True), ("1", True), ("True", True), ("false", False), ("", False)]:
        monkeypatch.setenv(zerogpu.ZERO_GPU_ENV, value)
        assert zerogpu.on_zerogpu() is expected


def test_the_requested_duration_comes_from_the_arguments_and_is_capped(monkeypatch):
    import spaces

    asked = []

    def gpu(duration):  # stands in for spaces.GPU on ZeroGPU: keeps the duration it was given
        asked.append(duration)
        return lambda function: function

    def from_controls(epochs, train_size, size=16, batch_size=128):  # as a handler's settings arrive
        return zerogpu.train_seconds(
            limits.app_config(epochs=epochs, train_size=train_size, size=size, batch_size=batch_size)
        )

    monkeypatch.setattr(spaces, "GPU", gpu)
    zerogpu.gpu(from_controls)(train_on_gpu)
    (duration,) = asked
    default = duration(limits.APP_DEFAULTS.epochs, limits.APP_DEFAULTS.train_size)
    assert zerogpu.MIN_DURATION_S <= default < zerogpu.MAX_DURATION_S
    assert duration(10, 60_000, size=64, batch_size=16) == zerogpu.MAX_DURATION_S
    # Settings the app refuses: the function itself says why, so the request is the smallest.
    assert duration(1000, 60_000) == duration(2.5, 100) == zerogpu.MIN_DURATION_S


def test_estimates_grow_with_every_setting():
    base = limits.APP_DEFAULTS
    seconds = zerogpu.train_seconds(base)
    for changes in [{"epochs": 4}, {"train_size": 24_000}, {"size": 32}, {"batch_size": 32}]:
        assert zerogpu.train_seconds(dataclasses.replace(base, **changes)) > seconds, changes
    assert zerogpu.train_seconds(dataclasses.replace(base, crop=2)) < seconds
    assert zerogpu.forward_flop("cnn", 32) > zerogpu.forward_flop("cnn", 16) > zerogpu.forward_flop("mlp", 128)
    tune = zerogpu.finetune_seconds(FinetuneConfig())
    assert zerogpu.START_S < tune < zerogpu.MAX_DURATION_S
    assert zerogpu.finetune_seconds(FinetuneConfig(max_steps=600)) > tune


@pytest.mark.parametrize(
    "seconds, expected",
    [(0.0, zerogpu.MIN_DURATION_S), (20.2, 21), (1e9, zerogpu.MAX_DURATION_S), (float("nan"), zerogpu.MAX_DURATION_S)],
)
def test_request_seconds(seconds, expected):
    assert zerogpu.request_seconds(seconds) == expected


def test_a_run_stops_before_its_request_runs_out():
    for seconds in (1.0, 12.7, 59.0, 500.0):
        assert 0 < zerogpu.run_limit(seconds) < zerogpu.request_seconds(seconds)  # the start-up is left out


def test_stop_after_closes_the_run():
    closed = []

    def run():
        try:
            yield from range(100)
        finally:
            closed.append(True)

    assert list(zerogpu.stop_after(0.0, run())) == [0] and closed == [True]
    assert list(zerogpu.stop_after(60.0, iter(range(3)))) == [0, 1, 2]


@pytest.mark.mnist
def test_the_app_trains_unchanged_with_spaces_installed(off_zerogpu, models, mnist_test):
    assert zerogpu.gpu(lambda *args: 1)(TrainHandlers.train) is TrainHandlers.train
    visitor = Visitor()
    settings = dict(model_name="cnn", size=4, epochs=1, batch_size=64, lr=0.01, optimizer="adam", train_size=200)
    *_, last = TrainHandlers(models).train(*settings.values(), False, 0, -1, visitor)  # augment, seed, probe
    assert last[2].startswith("done") and visitor.latest is not None and not cuda_tensors(visitor.latest.checkpoint)


@pytest.mark.mnist
def test_a_forked_run_changes_nothing_it_was_given_and_hands_back_cpu_models(mnist_train, mnist_test):
    visitor = Visitor()
    probe = np.zeros((28, 28), np.uint8)
    updates = list(run_forked(train_on_gpu, TINY, probe))
    assert updates[-1].status.startswith("done") and visitor.latest is None  # nothing came back but updates
    for update in updates:
        if update.checkpoint is not None:  # the caller, in the web process, adopts each epoch's model
            visitor.adopt(update.checkpoint, update.origin, replace=visitor.latest.key if visitor.latest else None)
    assert [u.checkpoint is not None for u in updates].count(True) == TINY.epochs and len(visitor.models) == 1
    assert visitor.latest.checkpoint.test_accuracy > 0.1
    assert not cuda_tensors(updates) and not cuda_tensors(visitor)
    pickle.dumps(visitor)  # what gr.State keeps pickles too
    assert visitor.latest.checkpoint.model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
