"""The confusion heatmap and the map picture: a click on a pixel finds what is drawn there, the diagonal
stands apart, and the cell clicked yields exactly that cell's digits.

    python -m pytest tests/test_charts.py
"""

import numpy as np
import pytest
import torch

from mnist_demo.charts import (
    COLOUR_MAP,
    DRAWING,
    HEATMAP,
    LEGEND,
    MAP_SIDE,
    MINE,
    cell_colour,
    confusion_picture,
    map_layout,
    map_picture,
    map_table,
)
from mnist_demo.metrics import confusion_matrix, pair_rows


def centre(true: int, predicted: int) -> tuple[float, float]:
    x0, y0, x1, y1 = HEATMAP.box(true, predicted)
    return (x0 + x1) / 2, (y0 + y1) / 2


def test_every_cell_is_found_from_any_of_its_pixels():
    for true in range(10):
        for predicted in range(10):
            x0, y0, x1, y1 = HEATMAP.box(true, predicted)
            for x, y in [centre(true, predicted), (x0, y0), (x1 - 1, y1 - 1)]:
                assert HEATMAP.cell_at(x, y) == (true, predicted)
    width, height = HEATMAP.size
    for x, y in [(5, 5), (HEATMAP.left - 1, HEATMAP.top + 5), (HEATMAP.left + 5, 3), (width - 1, height - 1), (-4, 60)]:
        assert HEATMAP.cell_at(x, y) is None  # headers and border select nothing


def test_the_picture_has_the_layouts_size_and_colours():
    confusion = np.diag([980, 1130, 1000, 1000, 970, 880, 950, 1020, 960, 1000])
    confusion[4, 9], confusion[9, 4], confusion[7, 1] = 25, 3, 1
    picture = confusion_picture(confusion)
    assert picture.shape == (HEATMAP.size[1], HEATMAP.size[0], 3) and picture.dtype == np.uint8

    def colour(t, p):  # a pixel inside the cell, clear of the count written in its middle
        x0, y0, _, _ = HEATMAP.box(t, p)
        return picture[y0 + 4, x0 + 4].astype(int)

    right, few, many, none = colour(4, 4), colour(7, 1), colour(4, 9), colour(0, 1)
    assert right[1] > right[0] + 40  # the diagonal is green
    assert many[0] > many[1] + 60 and few[0] > few[1]  # mistakes are red
    assert many[1] < few[1]  # and redder the more there are
    assert abs(none[0] - none[1]) < 5 and none[0] > 230  # no mistakes: pale grey
    assert (picture[HEATMAP.top + 10 : HEATMAP.top + 30, HEATMAP.left + 12 : HEATMAP.left + 30] < 100).any()  # a count


def test_the_selected_cell_is_outlined():
    confusion = np.eye(10, dtype=int) * 100
    plain, chosen = confusion_picture(confusion), confusion_picture(confusion, selected=(3, 5))
    x0, y0, _, _ = HEATMAP.box(3, 5)
    assert (chosen[y0 + 1, x0 + 10] == 0).all() and not (plain[y0 + 1, x0 + 10] == 0).all()
    assert np.array_equal(plain[: y0 - 3], chosen[: y0 - 3])  # nothing else changes


def test_a_bad_confusion_matrix_is_refused():
    with pytest.raises(ValueError, match="10, 10"):
        confusion_picture(np.zeros((9, 10)))


def test_cell_colours_of_an_empty_row_do_not_divide_by_zero():
    assert cell_colour(0, 0, diagonal=True, most_mistakes=0) == (255, 255, 255)


def test_clicking_a_cell_yields_the_digits_of_that_pair():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (3000,), generator=g)
    preds = torch.where(torch.rand(3000, generator=g) < 0.8, labels, torch.randint(0, 10, (3000,), generator=g))
    confusion = confusion_matrix(labels, preds).numpy()
    for true, predicted in [(4, 9), (9, 4), (3, 3), (0, 7)]:
        cell = HEATMAP.cell_at(*centre(true, predicted))
        rows = pair_rows(labels, preds, *cell)
        assert len(rows) == confusion[true, predicted] > 0
        assert (labels[rows] == true).all() and (preds[rows] == predicted).all()
        assert torch.equal(rows, torch.sort(rows).values)  # in the test set's order
    assert len(pair_rows(labels, preds, 4, 9, limit=3)) == min(3, confusion[4, 9])
    with pytest.raises(ValueError, match="digits are 0 to 9"):
        pair_rows(labels, preds, 10, 0)


def test_the_map_picture_puts_points_where_a_click_finds_them():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(500, 2)).astype(np.float32) * [3, 1]
    labels = np.arange(500) % 10
    drawing = np.array([[8.0, 0.5]], np.float32)  # beyond every map digit: the layout must still hold it
    layout = map_layout(points, drawing)
    pixels = layout.to_pixels(np.concatenate([points, drawing]))
    assert (pixels >= 0).all() and (pixels < MAP_SIDE).all()
    x, y = layout.to_pixels(points[123:124])[0]
    assert layout.nearest(points, x + 1, y - 1) == 123
    assert layout.nearest(points, *layout.to_pixels(drawing)[0]) is None  # nothing within reach of the drawing
    assert layout.to_pixels(np.array([[0.0, 1.0]]))[0, 1] < layout.to_pixels(np.array([[0.0, 0.0]]))[0, 1]  # y up

    near = points[:5]
    picture = map_picture(
        points, labels, layout, drawings=drawing, neighbours=[near], mine=points[5:7], mine_labels=[4, 9]
    )
    assert picture.shape[1] == MAP_SIDE and picture.shape[0] > MAP_SIDE and picture.dtype == np.uint8
    dx, dy = layout.to_pixels(drawing)[0].round().astype(int)
    assert (picture[dy, dx] == 255).all() and (picture[dy, dx + 6] < 80).all()  # a white marker in a black ring
    assert layout.to_json()["side"] == MAP_SIDE
    far = map_picture(points, labels, map_layout(points), drawings=np.array([[100.0, 0.0]], np.float32))
    assert (far[:MAP_SIDE, MAP_SIDE - 20 :] < 80).all(axis=2).any()  # a drawing off the map shows at its edge


def test_the_map_table_for_a_scatter_plot():
    points = np.arange(40, dtype=np.float32).reshape(20, 2)
    table = map_table(points, np.arange(20) % 10, drawings=np.zeros((1, 2)), mine=points[:3], mine_labels=[1, 2, 3])
    assert list(table.columns) == ["x", "y", "digit", "label"] and len(table) == 24
    assert str(table["x"].dtype) == "float64" and table["digit"].iloc[-1] == DRAWING  # drawn last, on top
    assert list(table["digit"].iloc[20:23]) == [MINE] * 3 and list(table["label"].iloc[20:23]) == ["1", "2", "3"]
    assert set(table["digit"]) <= set(COLOUR_MAP) and LEGEND[:10] == [str(d) for d in range(10)]
    empty = map_table(points[:0], np.zeros(0, int))
    assert len(empty) == 0 and str(empty["y"].dtype) == "float64"
