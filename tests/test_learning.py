"""The Train tab's "watch it learn" section through its handlers: frames become pictures on one set of axes,
the replay shows any epoch, the confusion heatmap's cells open onto their own test digits, and a real
run streams a map and a first layer per epoch whose last frame is the new model's map in the Draw tab.

    MNIST_ROOT=../shared/data python -m pytest tests/test_learning.py
"""

from __future__ import annotations

import asyncio

import gradio as gr
import numpy as np
import pytest
import torch

from mnist_demo.atlas import Digits, atlas_for
from mnist_demo.charts import HEATMAP, MAP_SIDE
from mnist_demo.filters import picture as layer_picture
from mnist_demo.learning import PAIR_DIGITS, Watch
from mnist_demo.metrics import predict_split
from mnist_demo.models import build_model
from mnist_demo.replay import Replay
from mnist_demo.runs import RunUpdate, loss_table, mistakes
from mnist_demo.session import Visitor
from testkit.sketches import draw, sketchpad
from ui.learning import LearningHandlers

SKIP = {"__type__": "update"}  # what gr.skip() is


def synthetic_digits(n: int = 100) -> Digits:
    labels = torch.arange(n) % 10
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    for i, d in enumerate(labels.tolist()):
        images[i, 4 + 2 * d : 8 + 2 * d, 6:22] = 200 + i % 50
    return Digits(torch.arange(n), images, labels)


def frames_of_a_changing_mlp(count: int = 3):
    """Frames of a small MLP whose first layer changes between them, on synthetic digits; and the labels."""
    torch.manual_seed(0)
    digits = synthetic_digits()
    model, replay = build_model("mlp", 16), Replay(digits=digits)
    for epoch in range(count):
        replay.record(model, epoch, None if epoch == 0 else 0.5 + 0.1 * epoch)
        with torch.no_grad():
            model.fc1.weight.mul_(2.0).add_(0.05 * torch.randn_like(model.fc1.weight))
    return replay.frames, digits.labels.numpy()


def update_with(frame) -> RunUpdate:
    return RunUpdate(loss_table([]), "status", frame=frame)


def test_each_frame_is_drawn_on_axes_that_hold_every_frame_so_far():
    frames, labels = frames_of_a_changing_mlp()
    watch = Watch(labels=labels)
    watch.start(epochs=2, probe=None)
    outputs = [LearningHandlers.frame_outputs(watch, update_with(f)) for f in frames]
    for i, (drawn, layer, _, slider) in enumerate(outputs):
        assert drawn.shape == (MAP_SIDE + 48, MAP_SIDE, 3) and layer.ndim == 3
        assert slider.value == i and slider.maximum == max(1, i) and slider.interactive == (i > 0)
    assert outputs[0][2].startswith("**Before training (random weights)** · ")
    assert outputs[2][2].startswith("**After epoch 2 of 2** · ") and outputs[2][2].endswith("test accuracy 70.00%")
    assert not np.array_equal(outputs[0][1], outputs[2][1])  # the first layer changed
    # The replay shows any frame again, on the final axes, without drawing twice.
    first = LearningHandlers.show(0, watch)
    assert first[0] is watch.pictures(0)[0] and first[2] == outputs[0][2]
    assert not np.array_equal(first[0], LearningHandlers.show(2, watch)[0])
    assert LearningHandlers.show(99, watch)[2] == outputs[2][2]  # clamped to the last frame
    layout = watch._layout
    for frame in frames:
        pixels = layout.to_pixels(frame.points)
        assert (pixels >= 0).all() and (pixels < MAP_SIDE).all()
    assert LearningHandlers.frame_outputs(watch, update_with(None)) == [SKIP] * 4


def test_play_steps_through_every_frame_and_moves_the_slider(monkeypatch):
    import ui.learning

    monkeypatch.setattr(ui.learning, "PLAY_EVERY_S", 0)
    frames, labels = frames_of_a_changing_mlp()
    watch = Watch(labels=labels)
    watch.start(epochs=2, probe=None)
    for f in frames:
        watch.add(f)

    async def collect(w):
        return [out async for out in LearningHandlers.play(w)]

    played = asyncio.run(collect(watch))
    assert [slider for *_, slider in played] == [0, 1, 2]
    assert [caption for _, _, caption, _ in played] == [watch.caption(i) for i in range(3)]
    assert asyncio.run(collect(Watch()))[0][2] == "Train a model to watch it learn."
    assert LearningHandlers.show(0, Watch())[2] == "Train a model to watch it learn."


class Click:
    def __init__(self, x, y):
        self.index = [x, y]


def centre(true: int, predicted: int) -> Click:
    x0, y0, x1, y1 = HEATMAP.box(true, predicted)
    return Click((x0 + x1) / 2, (y0 + y1) / 2)


@pytest.mark.mnist
def test_a_heatmap_cell_shows_exactly_the_test_digits_of_its_pair(models, mnist_test):
    model = models.pick("mlp-guide", None).model
    results = mistakes(model)
    watch = Watch()
    watch.finish(results)
    preds = predict_split(model, mnist_test)  # measured again, apart from the results
    true, predicted = np.unravel_index(np.argmax(results.confusion - np.diag(np.diag(results.confusion))), (10, 10))
    picture, gallery = LearningHandlers.cell(watch, centre(int(true), int(predicted)))
    count = int(results.confusion[true, predicted])
    more = f" (the first {PAIR_DIGITS})" if count > PAIR_DIGITS else ""
    assert gallery.label == f"Test digits: {count} {true}s read as {predicted}{more} (true → said)"
    _, tiles, _ = watch.pair(int(true), int(predicted))
    rows = [int(caption.split(":")[0][1:]) for _, caption in tiles]
    assert len(rows) == min(count, PAIR_DIGITS) and rows == sorted(rows)
    assert all(mnist_test.labels[r] == true and preds[r] == predicted for r in rows)
    assert np.array_equal(tiles[0][0][::3, ::3, 0], mnist_test.images[rows[0]].numpy())  # the digit itself
    # The cell is outlined in black; the diagonal's cells show the digits read right.
    x0, y0, _, _ = HEATMAP.box(int(true), int(predicted))
    assert picture[y0 + 1, x0 + 10].max() < 40
    _, diagonal, label = watch.pair(3, 3)
    assert label.startswith(f"{results.confusion[3, 3]} 3s read correctly (the first {PAIR_DIGITS})")
    assert all(mnist_test.labels[int(c.split(":")[0][1:])] == 3 for _, c in diagonal)
    assert LearningHandlers.cell(watch, Click(5, 5)) == (SKIP, SKIP)  # the corner: not a cell
    assert LearningHandlers.cell(Watch(), centre(1, 1)) == (SKIP, SKIP)  # no run yet


@pytest.mark.slow
@pytest.mark.mnist
def test_a_run_shows_a_map_and_a_first_layer_per_epoch_and_ends_on_the_draw_tabs_map(models, mnist_test):
    from ui.train import TrainHandlers

    visitor, watch = Visitor(), Watch()
    visitor.drawings.add(sketchpad(draw("3")), 3)
    settings = dict(
        model_name="cnn", size=4, epochs=2, batch_size=64, lr=0.01, optimizer="adam", train_size=300, augment=False
    )
    updates = [u for u in TrainHandlers(models).train(*settings.values(), 0, 0, visitor, watch) if u is not None]
    maps = [u[8] for u in updates if isinstance(u[8], np.ndarray)]
    layers = [u[9] for u in updates if isinstance(u[9], np.ndarray)]
    captions = [u[10] for u in updates if isinstance(u[10], str)]
    assert len(maps) == len(layers) == len(captions) == 3  # untrained, then after each epoch
    assert [f.epoch for f in watch.frames] == [0, 1, 2] and all(len(f.mine) == 1 for f in watch.frames)
    assert not np.array_equal(maps[0], maps[2]) and not np.array_equal(layers[0], layers[2])
    # The watched drawing's first-layer responses, not the 3x3 filters.
    watched = visitor.drawings.entries[0].image
    assert np.array_equal(layers[0], layer_picture(watch.frames[0].first_layer, watched))
    assert layers[0].shape != layer_picture(watch.frames[0].first_layer).shape
    assert captions[-1].startswith("**After epoch 2 of 2**")
    assert updates[-1][11] == SKIP and isinstance(updates[-1][5], np.ndarray)  # the heatmap, at the end
    # Accuracy over all 10,000 test digits, though the map's 2,000 were measured apart from the loop's.
    from mnist_demo.metrics import accuracy

    model = visitor.latest.checkpoint.model
    assert abs(watch.frames[-1].test_accuracy - accuracy(model, mnist_test)) < 1e-6
    assert np.array_equal(atlas_for(model).points, watch.frames[-1].points)  # the Draw tab's map is the last frame
    assert isinstance(LearningHandlers.cell(watch, centre(1, 1))[1], gr.Gallery)
