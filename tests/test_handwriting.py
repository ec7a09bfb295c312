"""Handwriting fonts, world-style digits, training non-digits, the held-out generators and the training
that uses them: each makes what it says, the same on every run, and the groups never mix.

    python -m pytest tests/test_handwriting.py
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mnist_demo import handfonts
from mnist_demo.data import Split
from mnist_demo.outliers import draw_outlier, outlier_images
from mnist_demo.preprocess import sketch_to_tensor
from mnist_demo.train import OUTLIERS_PER_DIGIT, TrainConfig, new_model, train
from mnist_demo.worldstyles import add_stroke, styled_digits
from testkit.nondigits import DOODLES, doodle, nondigits
from testkit.tune_nondigits import DOODLES as TUNE_DOODLES
from testkit.tune_nondigits import doodle as tune_doodle
from testkit.tune_nondigits import tune_nondigits
from testkit.writers import habit_writer, writers


def test_font_groups_are_disjoint_and_every_font_is_there():
    groups = [set(handfonts.TRAIN), set(handfonts.TUNE), set(handfonts.HELD_OUT)]
    assert sum(map(len, groups)) == len(set.union(*groups)) == 33
    on_disk = {p.name for p in handfonts.FONT_DIR.iterdir() if p.is_dir()}
    assert on_disk == set.union(*groups)
    for name in on_disk:
        assert (handfonts.FONT_DIR / name / "LICENSE").is_file()  # the licence travels with each font


def test_non_digit_letters_exclude_those_that_read_as_digits():
    assert not set("OoIlZzSsBbgq") & set(handfonts.LETTERS)
    assert {"A", "K", "x", "w"} <= set(handfonts.LETTERS)


def test_a_font_drawing_is_a_canvas_the_reader_reads_and_differs_each_time():
    a, b = handfonts.draw("7", "caveat", 0), handfonts.draw("7", "caveat", 1)
    assert a.shape == (280, 280) and a.dtype == np.uint8 and a[0, 0] == 255 and a.min() < 64
    assert not np.array_equal(a, b)
    assert np.array_equal(a, handfonts.draw("7", "caveat", 0))  # seeded
    assert sketch_to_tensor(a) is not None
    with pytest.raises(FileNotFoundError, match="no handwriting font"):
        handfonts.draw("7", "no-such-font", 0)


def test_world_styles_add_ink_where_the_digit_is():
    seven = np.zeros((28, 28), np.uint8)
    seven[5, 8:20] = 255  # the bar
    for r in range(5, 24):
        seven[r, 19 - (r - 5) // 2] = 255  # the stem, leaning left
    crossed = add_stroke(seven, 7, np.random.default_rng(0))
    assert crossed.shape == (112, 112)
    enlarged = np.asarray(Image.fromarray(seven).resize((112, 112), Image.Resampling.BILINEAR))  # as add_stroke
    added = (crossed > 128) & ~(enlarged > 128)
    rows = np.flatnonzero(added.any(1))
    assert added.sum() > 100 and 40 < rows.mean() < 80  # a bar across the middle, not at the top


@pytest.mark.mnist
def test_styled_digits_are_seeded_and_labelled(mnist_train):
    a, b = styled_digits(12, seed=3, mnist=mnist_train), styled_digits(12, seed=3, mnist=mnist_train)
    assert a.images.shape == (12, 28, 28) and a.images.dtype == torch.uint8
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert int(a.labels.min()) >= 0 and int(a.labels.max()) <= 9


def test_outliers_are_seeded_reader_images_of_every_kind():
    images = outlier_images(6, seed=0)
    assert images.shape == (6, 28, 28) and images.dtype == torch.uint8 and images.float().mean() > 5
    assert torch.equal(images, outlier_images(6, seed=0))
    rng = np.random.default_rng(0)
    assert all(draw_outlier(rng).shape == (280, 280) for _ in range(20))


def test_the_tune_non_digits_are_neither_the_training_nor_the_measuring_ones():
    assert not set(TUNE_DOODLES) & set(DOODLES)
    for kind in TUNE_DOODLES:
        assert tune_doodle(kind)
    with pytest.raises(ValueError, match="no doodle"):
        tune_doodle("heart")
    drawings = tune_nondigits(15, seed=0)
    assert {k for k, _ in drawings} <= {"letter", "doodle", "crossed out"} and len(drawings) == 15
    assert all(c.shape == (280, 280) and c.dtype == np.uint8 and c.min() < 128 for _, c in drawings)
    again = tune_nondigits(15, seed=0)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(drawings, again, strict=True))


def test_the_measuring_generators_are_not_the_training_ones():
    for kind in DOODLES:
        assert doodle(kind)  # every doodle has strokes
    drawings = nondigits(20, seed=0)
    assert {k for k, _ in drawings} <= {"letter", "doodle", "crossed out"} and len(drawings) == 20
    assert all(c.shape == (280, 280) for _, c in drawings)
    bench = writers("bench", 2, 0, 1)
    assert [w.name for w in bench] == [f"font {f}" for f in handfonts.HELD_OUT[:2]]
    assert not {w.name for w in writers("tune", 11, 0, 1)} & {f"font {f}" for f in handfonts.HELD_OUT}


def test_a_habit_writer_keeps_their_habits():
    w = habit_writer(per_digit=3, seed=7)
    assert w.digits == [d for d in range(10) for _ in range(3)]
    habits = w.name.removeprefix("habits ").split(", ")
    assert 2 <= len(habits) <= 3
    train_idx, test_idx = w.split(1)
    assert len(train_idx) == 10 and len(test_idx) == 20 and not set(train_idx) & set(test_idx)


def test_training_with_outliers_and_styled_digits_runs_and_counts_its_steps():
    g = torch.Generator().manual_seed(0)
    fake = Split(torch.randint(0, 256, (64, 28, 28), dtype=torch.uint8, generator=g), torch.arange(64) % 10)
    styled = Split(fake.images[:16], fake.labels[:16])
    outliers = fake.images[:8]
    config = TrainConfig(model="mlp", size=8, epochs=1, batch_size=16, styled=16, outliers=8, log_every=1)
    assert config.steps_per_epoch(64) == 5  # (64 + 16) / 16
    events = list(train(config, new_model(config), fake, fake.subset(16), torch.device("cpu"), styled, outliers))
    assert events[-1].step == 5 and events[-1].test_accuracy is not None
    assert OUTLIERS_PER_DIGIT > 0
    with pytest.raises(ValueError, match="outlier_weight"):
        TrainConfig(outlier_weight=-1.0)
