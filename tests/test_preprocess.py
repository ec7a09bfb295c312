"""sketch_to_tensor: the same drawing gives the same input whatever its canvas, place, size, brush and form;
empty canvases give None; anything that is not a drawing is refused before it is allocated."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from mnist_demo import canvas
from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.data import MNIST_MEAN, MNIST_STD
from mnist_demo.preprocess import (
    STROKE_RANGE,
    TARGET_COM,
    Sketch,
    _grow,
    read_canvas,
    sketch_to_tensor,
    stroke_mask,
    stroke_ratio,
)
from testkit.sketches import BLACK, CLEAR, WHITE, draw, sketchpad

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "cnn.safetensors"
DIGITS = "0123456789"
# Each drawing of a digit below is compared with this one: black, 280 x 280, 70% tall, centred, 20-px brush.
REFERENCE = {"size": (280, 280), "height": 0.7, "brush": 20}
SAME_STROKE = {  # same stroke width relative to the digit: the 28 x 28 result should barely change
    "shifted and smaller": {"size": (280, 280), "height": 0.4, "at": (0.3, 0.35), "brush": 11},
    "800 canvas, scaled up": {"size": (800, 800), "height": 0.85, "at": (0.55, 0.5), "brush": 56},
    "wide canvas, off centre": {"size": (600, 300), "height": 0.8, "at": (0.7, 0.5), "brush": 24},
    "tiny canvas": {"size": (112, 112), "height": 0.75, "brush": 8},
}
RESTROKED = {  # thinner or fatter brush: brought into MNIST's range of widths, so still close
    "thin brush on 800": {"size": (800, 800), "brush": 6},
    "1-px brush on 800": {"size": (800, 800), "brush": 1},
    "hairline on 280": {"size": (280, 280), "brush": 3},
    "fat brush on 280": {"size": (280, 280), "brush": 34},
}


def picture(value) -> np.ndarray:
    """The display image of a drawing as floats in [0, 1]."""
    sketch = sketch_to_tensor(value)
    assert sketch is not None
    return sketch.image.astype(np.float32) / 255.0


def reference(digit: str = "2") -> np.ndarray:
    return picture(np.asarray(draw(digit, **REFERENCE)))


def similarity(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(mean absolute difference, correlation) of two 28 x 28 pictures."""
    return float(np.abs(a - b).mean()), float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.fixture(scope="module")
def cnn():
    assert WEIGHTS.is_file(), f"the shipped weights are missing: {WEIGHTS}"
    return load_checkpoint(WEIGHTS).model


def test_output_is_an_mnist_style_sketch():
    canvas = np.asarray(draw("7", **REFERENCE))
    sketch = sketch_to_tensor(canvas)
    assert isinstance(sketch, Sketch)
    assert sketch.tensor.shape == (1, 1, 28, 28) and sketch.tensor.dtype == torch.float32
    assert sketch.image.shape == (28, 28) and sketch.image.dtype == np.uint8
    # white ink on black, normalised exactly as training normalises
    assert sketch.image[0].max() == 0 and sketch.image.max() >= 250
    expected = (torch.from_numpy(sketch.image).float() / 255 - MNIST_MEAN) / MNIST_STD
    torch.testing.assert_close(sketch.tensor[0, 0], expected)
    # the solid ink fits the 20-px box and its centre of mass sits where MNIST's does
    solid = np.argwhere(sketch.image >= 128)
    assert max(np.ptp(solid, axis=0)) + 1 in (19, 20, 21)
    assert np.allclose(ndimage.center_of_mass(sketch.image.astype(float)), TARGET_COM, atol=0.3)
    # the box is where the ink was on the canvas
    ink = np.argwhere(canvas[..., 0] < 128)  # (row, col) of every ink pixel
    expected = (ink[:, 1].min(), ink[:, 0].min(), ink[:, 1].max() + 1, ink[:, 0].max() + 1)
    assert np.allclose(sketch.box, expected, atol=3), (sketch.box, expected)


@pytest.mark.parametrize("digit", "2578")
@pytest.mark.parametrize("variant", SAME_STROKE)
def test_same_drawing_elsewhere_gives_the_same_input(digit, variant):
    diff, corr = similarity(picture(np.asarray(draw(digit, **SAME_STROKE[variant]))), reference(digit))
    assert diff < 0.035 and corr > 0.94, (diff, corr)


@pytest.mark.parametrize("digit", "2578")
@pytest.mark.parametrize("variant", RESTROKED)
def test_other_brush_gives_nearly_the_same_input(digit, variant):
    diff, corr = similarity(picture(np.asarray(draw(digit, **RESTROKED[variant]))), reference(digit))
    assert diff < 0.06 and corr > 0.85, (diff, corr)


def test_stroke_width_follows_mnist_not_the_brush():
    """Ink per digit stays within MNIST's range whether the brush was 1 px on 800 or 60 px on 280."""
    inks = [picture(np.asarray(draw("3", size=(s, s), brush=b))).sum() for s, b in [(800, 1), (280, 20), (280, 60)]]
    assert min(inks) > 60 and max(inks) < 160 and max(inks) / min(inks) < 1.6, inks


def test_same_prediction_wherever_and_however_drawn(cnn):
    for digit in DIGITS:
        drawings = [REFERENCE, *SAME_STROKE.values(), *RESTROKED.values()]
        with torch.no_grad():
            x = torch.cat([sketch_to_tensor(np.asarray(draw(digit, **kw))).tensor for kw in drawings])
            predictions = cnn(x).argmax(1).tolist()
        assert predictions == [int(digit)] * len(drawings), f"{digit}: {predictions}"


def _forms() -> dict:
    """The same black-on-white 2 in every form a drawing can arrive in."""
    rgba = draw("2", **REFERENCE)
    pad = sketchpad(rgba)
    layer = pad["layers"][0]
    red = np.asarray(draw("2", **REFERENCE, ink=(204, 50, 50, 255)))
    light = np.asarray(draw("2", **REFERENCE, ink=WHITE, paper=BLACK))
    junk_under_clear = layer.copy()
    junk_under_clear[layer[..., 3] == 0, :3] = np.random.default_rng(0).integers(0, 256, (1, 3))
    gray = np.asarray(rgba.convert("L"))
    holed = np.asarray(rgba).copy()
    holed[230:270, 10:60] = (0, 0, 0, 0)  # see-through black beside the digit: shows the paper, is no ink
    return {
        "sketchpad dict": pad,
        "layers only, no background or composite": {"background": None, "layers": [layer], "composite": None},
        "background and layers, composite None": {**pad, "composite": None},
        "layer with junk colour where transparent": {"background": None, "layers": [junk_under_clear]},
        "ImageEditor red ink": {"background": None, "layers": [], "composite": red},
        "numpy gray uint8": gray,
        "numpy gray (H, W, 1)": gray[..., None],
        "numpy RGB uint8": np.asarray(rgba.convert("RGB")),
        "numpy RGBA uint8": np.asarray(rgba),
        "numpy gray float": gray / 255.0,
        "numpy RGB float32": np.asarray(rgba.convert("RGB")).astype(np.float32) / 255,
        "numpy RGBA float": np.asarray(rgba) / 255.0,
        "numpy bool, True = ink": gray < 128,
        "numpy int64": gray.astype(np.int64),
        "PIL L": rgba.convert("L"),
        "PIL RGB": rgba.convert("RGB"),
        "PIL RGBA": rgba,
        "PIL P": rgba.convert("RGB").convert("P"),
        "PIL 1": rgba.convert("1", dither=Image.Dither.NONE),
        "PIL LA": rgba.convert("LA"),
        "white ink on black": light,
        "light ink on transparent": np.asarray(draw("2", **REFERENCE, ink=(250, 230, 120, 255), paper=CLEAR)),
        "dark ink on transparent": np.asarray(draw("2", **REFERENCE, ink=BLACK, paper=CLEAR)),
        "grey paper, blue ink": np.asarray(draw("2", **REFERENCE, ink=(30, 60, 200, 255), paper=(200, 200, 200, 255))),
        "opaque paper with a see-through hole": holed,
    }


@pytest.mark.parametrize("form", list(_forms()))
def test_every_form_of_the_same_drawing_reads_the_same(form):
    diff, corr = similarity(picture(_forms()[form]), reference())
    assert diff < 0.02 and corr > 0.98, (diff, corr)


BLANK = {
    "raw None": None,
    "cleared sketchpad": {"background": None, "layers": [], "composite": None},
    "undo to blank": {
        "background": np.full((280, 280, 4), 255, np.uint8),
        "layers": [np.zeros((280, 280, 4), np.uint8)],
        "composite": np.full((280, 280, 4), 255, np.uint8),
    },
    "white canvas": np.full((280, 280), 255, np.uint8),
    "black canvas": np.zeros((400, 300, 3), np.uint8),
    "transparent canvas with junk colour": np.dstack(
        [np.full((280, 280, 3), 90, np.uint8), np.zeros((280, 280), np.uint8)]
    ),
    "faint noise": np.random.default_rng(0).integers(240, 256, (280, 280)).astype(np.uint8),
    "a speck": np.asarray(draw("1", size=(800, 800), height=0.015, brush=8)),
    "a dab of a fat brush": np.asarray(draw("0", size=(280, 280), height=0.01, brush=24)),
    "a blob": np.asarray(draw("8", size=(280, 280), height=0.3, brush=90)),
}


@pytest.mark.parametrize("grow", [0.0, 0.3, 0.8, 1.2, 2.5])
def test_strokes_grow_as_the_distance_transform_says(grow):
    """restroke's shortcut for a little growth (shifted copies of the mask) agrees with the distance transform."""
    mask = ndimage.binary_dilation(np.random.default_rng(1).random((50, 40)) > 0.97, iterations=2)
    reach = int(np.ceil(grow + 1))
    padded = np.pad(mask, reach)
    expected = np.where(padded, 1.0, np.clip(1.0 + grow - ndimage.distance_transform_edt(~padded), 0.0, 1.0))
    np.testing.assert_allclose(_grow(mask, grow), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("case", list(BLANK))
def test_empty_canvas_or_speck_gives_none(case):
    assert sketch_to_tensor(BLANK[case]) is None


def test_a_stray_speck_beside_a_digit_is_ignored():
    canvas = np.asarray(draw("2", **REFERENCE)).copy()
    canvas[5:9, 270:274] = BLACK  # 4 px, in the far corner
    diff, _ = similarity(picture(canvas), reference())
    assert diff < 0.005


GARBAGE = {
    "NaN": np.full((280, 280), np.nan),
    "inf": np.where(np.eye(280, dtype=bool), np.inf, 0.5),
    "float above 1": np.full((280, 280), 1.5),
    "float below 0": np.full((280, 280), -0.1),
    "int above 255": np.full((280, 280), 300, np.int32),
    "negative int": np.full((280, 280), -1, np.int16),
    "1 x 1": np.zeros((1, 1), np.uint8),
    "27 x 280": np.zeros((27, 280), np.uint8),
    "4-D": np.zeros((1, 280, 280, 4), np.uint8),
    "1-D": np.zeros(784, np.uint8),
    "2 channels": np.zeros((280, 280, 2), np.uint8),
    "5 channels": np.zeros((280, 280, 5), np.uint8),
    "complex": np.zeros((280, 280), np.complex64),
    "strings": np.full((280, 280), "a"),
    "objects": np.full((280, 280), None, dtype=object),
    "a string": "canvas.png",
    "bytes": b"\x89PNG",
    "a list": [[0] * 280] * 280,
    "a torch tensor": torch.zeros(280, 280),
    "dict with other keys": {"image": np.zeros((280, 280), np.uint8)},
    "empty dict": {},
    "dict with layers a string": {"background": None, "layers": "abc", "composite": None},
    "dict with composite a string": {"background": None, "layers": [], "composite": "x.png"},
    "dict with a nested dict": {"composite": {"composite": np.zeros((280, 280), np.uint8)}},
    "layers of different sizes": {
        "background": np.zeros((280, 280, 4), np.uint8),
        "layers": [np.zeros((300, 280, 4), np.uint8)],
        "composite": None,
    },
    "PIL 20 x 20": Image.new("L", (20, 20)),
    "more layers than allowed": {
        "background": None,
        "layers": [np.broadcast_to(np.zeros((), np.uint8), (280, 280, 4))] * (canvas.MAX_LAYERS + 1),
        "composite": None,
    },
}


@pytest.mark.parametrize("case", list(GARBAGE))
def test_garbage_is_refused_with_a_clear_error(case):
    with pytest.raises(ValueError, match=r"canvas|sketch|drawing|Sketchpad"):
        sketch_to_tensor(GARBAGE[case])


@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_huge_arrays_are_refused_before_anything_is_allocated(dtype):
    huge = np.broadcast_to(np.zeros((), dtype), (5000, 5000, 4))  # no memory behind it
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="5000"):
            sketch_to_tensor(huge)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


@pytest.mark.parametrize("composite", [None, np.zeros((280, 280, 4), np.uint8)])
def test_layers_are_counted_and_measured_before_any_is_read(composite):
    """Six layers naming one 4096 x 4096 PNG once cost +911 MB: now counted, then their pixels summed."""
    full = np.broadcast_to(np.zeros((), np.uint8), (canvas.MAX_SIDE, canvas.MAX_SIDE, 4))  # no memory behind it
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=f"at most {canvas.MAX_LAYERS} layers"):
            sketch_to_tensor({"background": None, "layers": [full] * 6, "composite": composite})
        with pytest.raises(ValueError, match="pixels together"):
            sketch_to_tensor({"background": full, "layers": [full] * 2, "composite": None})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_huge_image_files_are_refused_from_their_header():
    buffer = io.BytesIO()
    Image.new("1", (5000, 300)).save(buffer, format="PNG")
    lazy = Image.open(io.BytesIO(buffer.getvalue()))  # header read, pixels not decoded
    with pytest.raises(ValueError, match="5000"):
        sketch_to_tensor(lazy)
    with pytest.raises(ValueError, match="5000"):
        sketch_to_tensor({"background": None, "layers": [lazy], "composite": None})


@pytest.mark.parametrize("brush", [200, 1])
def test_largest_allowed_canvas_works(brush):
    big = np.asarray(draw("5", size=(4096, 4096), brush=brush, mode="L"))
    assert similarity(picture(big), reference("5"))[1] > 0.9


@pytest.mark.mnist
def test_constants_match_mnist(mnist_train):
    """STROKE_RANGE and TARGET_COM are MNIST's, measured through this very pipeline."""
    images = mnist_train.images[:1000].numpy()
    ratios = []
    for image in images:
        canvas = read_canvas(image)
        mask, _ = stroke_mask(canvas, canvas.coarse)
        ratios.append(stroke_ratio(mask)[0])
    assert np.allclose(np.percentile(ratios, [25, 75]), STROKE_RANGE, atol=0.006)
    ys, xs = np.mgrid[:28, :28]
    mass = images.sum((1, 2)).astype(float)
    assert abs(((images * ys).sum((1, 2)) / mass).mean() - TARGET_COM) < 0.1
    assert abs(((images * xs).sum((1, 2)) / mass).mean() - TARGET_COM) < 0.1


@pytest.mark.mnist
def test_mnist_digits_pass_through_nearly_unchanged(mnist_test):
    images = mnist_test.images[:300].numpy()
    pictures = np.stack([picture(image) for image in images])
    diffs = np.abs(pictures - images / 255.0).mean((1, 2))
    assert np.median(diffs) < 0.05, np.median(diffs)
