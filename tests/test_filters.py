"""What the first layer learned: the arrays are the layer's own weights and outputs, and the pictures show them.

python -m pytest tests/test_filters.py
"""

import numpy as np
import pytest
import torch

from mnist_demo.data import normalize
from mnist_demo.filters import MAX_UNITS, first_layer, picture, responses
from mnist_demo.inference import prepare
from mnist_demo.models import build_model
from mnist_demo.preprocess import sketch_to_tensor
from mnist_demo.render import diverging, tiles
from testkit.sketches import draw


def test_mlp_units_are_their_28x28_weights():
    torch.manual_seed(0)
    model = build_model("mlp", 28)
    layer = first_layer(model)
    assert layer.shape == (28, 28, 28) and layer.dtype == np.float16
    assert np.allclose(layer[5], model.fc1.weight[5].detach().reshape(28, 28).numpy(), atol=1e-3)
    assert first_layer(build_model("mlp", 300)).shape == (MAX_UNITS, 28, 28)  # a wide MLP shows its first units


@pytest.mark.parametrize("crop", [0, 2])
def test_cnn_responses_are_its_first_convolution_on_the_ink(crop):
    torch.manual_seed(1)
    model = prepare(build_model("cnn", 8, crop))  # as the app holds it: channels-last
    layer = first_layer(model)
    assert layer.shape == (8, 3, 3)
    image = sketch_to_tensor(draw("3")).image  # (28, 28) uint8
    maps = responses(layer, image, crop)
    side = 28 - 2 * crop
    assert maps.shape == (8, side, side)
    conv = model.features[0][0]
    with torch.no_grad():
        x = normalize(torch.from_numpy(image)[None])
        paper = normalize(torch.zeros(1, 28, 28, dtype=torch.uint8))
        cut = slice(crop, 28 - crop)
        expected = conv(x[:, :, cut, cut]) - conv(paper[:, :, cut, cut])
    assert np.allclose(maps, expected[0].numpy(), atol=1e-2)  # float16 weights
    assert np.abs(maps[:, :3, :3]).max() < 1e-3  # blank corners stay at zero
    with pytest.raises(ValueError, match="28, 28"):
        responses(layer, image[:20], crop)


def test_tiles_show_sign_and_pattern():
    arrays = np.zeros((5, 4, 4), np.float32)
    arrays[0, 0, 0], arrays[0, 3, 3] = 2.0, -2.0
    grid = tiles(arrays, scale=2, columns=3, gap=1)
    assert grid.shape == (2 * 8 + 1, 3 * 8 + 2, 3) and grid.dtype == np.uint8
    red, blue, zero = grid[0, 0], grid[7, 7], grid[3, 3]
    assert red[0] > red[2] + 100 and blue[2] > blue[0] + 100 and np.ptp(zero) == 0
    assert (grid[:, 8] == 255).all()  # a white gap between tiles
    assert np.isfinite(diverging(np.zeros((3, 3)))).all()  # an all-zero tile is not a division by zero
    with pytest.raises(ValueError):
        tiles(np.zeros((0, 3, 3)))


def test_pictures_for_each_kind_of_first_layer():
    torch.manual_seed(2)
    mlp, cnn = first_layer(build_model("mlp", 28)), first_layer(build_model("cnn", 8))
    image = sketch_to_tensor(draw("5")).image
    units, filters, maps = picture(mlp), picture(cnn), picture(cnn, image)
    assert units.shape[0] > 28 * 3 and filters.shape != maps.shape
    assert maps.shape == tiles(responses(cnn, image), 2).shape
