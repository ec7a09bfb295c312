"""The map while training: a frame per epoch, turned like the last, with the visitor's drawings on it; on
real MNIST the digits separate as the network trains.

    python -m pytest tests/test_replay.py
"""

import numpy as np
import pytest
import torch

from mnist_demo.atlas import Digits
from mnist_demo.charts import MAP_SIDE
from mnist_demo.models import build_model
from mnist_demo.replay import Replay
from mnist_demo.train import TrainConfig, new_model, train


def synthetic_digits(n: int = 100) -> Digits:
    labels = torch.arange(n) % 10
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    for i, d in enumerate(labels.tolist()):
        images[i, 4 + 2 * d : 8 + 2 * d, 6:22] = 200 + i % 50
    return Digits(torch.arange(n), images, labels)


def test_frames_follow_the_model_and_hold_the_visitors_drawings():
    torch.manual_seed(0)
    digits = synthetic_digits()
    model = build_model("cnn", 4)
    replay = Replay(mine_images=digits.images[:3].numpy(), mine_labels=np.array([0, 1, 2]), digits=digits)
    model.train()
    first = replay.record(model, 0)
    assert model.training  # recording between epochs leaves training mode on
    with torch.no_grad():
        model.features[0][0].weight.mul_(-1.5)
    second = replay.record(model, 1, test_accuracy=0.5)
    assert [f.epoch for f in replay.frames] == [0, 1] and second.test_accuracy == 0.5
    assert first.points.shape == (100, 2) and first.mine.shape == (3, 2)
    assert np.allclose(second.mine, second.points[:3], atol=0.05)  # the same images land on the same spots
    assert np.allclose(first.first_layer, -second.first_layer / 1.5, atol=1e-2)  # each frame keeps its own layer
    assert replay.atlas is not None and np.array_equal(replay.atlas.points, second.points)
    assert np.array_equal(replay.labels, digits.labels.numpy())
    layout = replay.layout()
    for frame in replay.frames:
        pixels = layout.to_pixels(np.concatenate([frame.points, frame.mine]))
        assert (pixels >= 0).all() and (pixels < MAP_SIDE).all()  # one set of axes holds every frame


def test_a_replay_without_frames_has_no_layout():
    with pytest.raises(ValueError, match="no frames"):
        Replay(digits=synthetic_digits()).layout()


@pytest.mark.slow
def test_the_map_separates_while_a_cnn_trains(mnist_train, mnist_test):
    config = TrainConfig(model="cnn", size=8, epochs=2, batch_size=64, train_size=3000, schedule="onecycle", lr=0.01)
    model, replay = new_model(config), Replay()
    replay.record(model, 0)
    for event in train(config, model, mnist_train, mnist_test.subset(1000), torch.device("cpu")):
        if event.test_accuracy is not None:
            replay.record(model, event.epoch, event.test_accuracy)
    separations = [f.separation for f in replay.frames]
    # Measured: 54% untrained, 75% and 79% after one and two epochs (chance: 10%).
    assert len(separations) == 3 and separations[-1] > separations[0] + 0.15, separations
    for a, b in zip(replay.frames, replay.frames[1:]):  # each frame turned to sit closest to the one before
        moved = ((b.points - a.points) ** 2).sum()
        for flip in ([-1, 1], [1, -1], [-1, -1]):
            assert moved <= ((b.points * flip - a.points) ** 2).sum()
