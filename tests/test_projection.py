"""Projections to the plane on synthetic clusters: LDA finds separating directions PCA misses, stays finite
with more features than digits or none that vary, and Procrustes undoes a turn.

    python -m pytest tests/test_projection.py
"""

import numpy as np
import pytest
import torch

from mnist_demo.projection import Projection, centroid_accuracy, fit_lda, fit_pca, orientation, procrustes


def clusters(n_per_class: int, width: int, noise_axis_scale: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ten digits' clouds whose means differ along 4 axes, with far larger noise along two others."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(10).repeat_interleave(n_per_class)
    centres = torch.zeros(10, width)
    centres[:, :4] = torch.randn(10, 4, generator=torch.Generator().manual_seed(99)) * 3.0  # the digits differ here
    x = centres[labels] + torch.randn(len(labels), width, generator=g)
    x[:, -2:] *= noise_axis_scale  # the directions of largest variance carry no digit information
    return x, labels


def held_out_accuracy(projection: Projection, fit, held) -> float:
    (x, y), (hx, hy) = fit, held
    return centroid_accuracy(projection(x), y.numpy(), projection(hx), hy.numpy())


def test_lda_separates_digits_that_pca_does_not():
    fit, held = clusters(60, 32, 30.0, seed=0), clusters(60, 32, 30.0, seed=1)
    lda = held_out_accuracy(fit_lda(*fit), fit, held)
    pca = held_out_accuracy(fit_pca(fit[0]), fit, held)
    assert lda > 0.6 and pca < 0.3, (lda, pca)  # PCA looks along the noise


def test_lda_is_finite_with_more_features_than_digits():
    x, y = clusters(5, 500, 1.0, seed=2)  # 50 digits, 500 features: the scatter is singular without shrinkage
    projection = fit_lda(x, y)
    points = projection(x)
    assert projection.matrix.shape == (2, 500) and np.isfinite(points).all()
    assert centroid_accuracy(points, y.numpy(), points, y.numpy()) > 0.5


def test_constant_features_put_every_digit_at_the_centre():
    x, y = torch.ones(40, 16), torch.arange(10).repeat(4)  # a dead network: nothing varies
    points = fit_lda(x, y)(x)
    assert np.array_equal(points, np.zeros((40, 2), np.float32))


def test_lda_directions_have_unit_spread_within_digits():
    x, y = clusters(200, 8, 1.0, seed=3)
    points = fit_lda(x, y, shrinkage=0.0)(x)
    means = np.stack([points[y.numpy() == d].mean(0) for d in range(10)])
    within = points - means[y.numpy()]
    assert np.allclose(within.std(0), 1.0, atol=0.05)  # one map unit = one standard deviation of a cloud


def test_a_projection_is_one_matrix_product_that_survives_json():
    x, y = clusters(20, 12, 1.0, seed=4)
    projection = fit_lda(x, y)
    sent = projection.to_json()
    mean, matrix = np.array(sent["mean"], np.float32), np.array(sent["matrix"], np.float32)
    assert np.allclose((x.numpy() - mean) @ matrix.T, projection(x), atol=1e-5)
    with pytest.raises(ValueError, match="expected features"):
        projection(np.zeros((3, 11)))


@pytest.mark.parametrize("angle, flip", [(0.7, 1), (2.5, -1), (-1.2, -1)])
def test_procrustes_undoes_a_turn_and_a_reflection(angle, flip):
    rng = np.random.default_rng(5)
    target = rng.normal(size=(300, 2)).astype(np.float32)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) @ np.diag([1, flip])
    moved = target @ turn.T.astype(np.float32) + rng.normal(scale=0.01, size=(300, 2)).astype(np.float32)
    back = procrustes(moved, target)
    assert np.allclose(back @ back.T, np.eye(2), atol=1e-5)  # a rotation or reflection, no stretching
    assert np.abs(moved @ back - target).max() < 0.1


def test_orientation_puts_the_zeros_up_and_right():
    points = np.array([[-3.0, 2.0], [-1.0, 4.0], [5.0, -5.0]], np.float32)
    labels = np.array([0, 0, 1])
    turned = points @ orientation(points, labels)
    assert (turned[labels == 0].mean(0) >= 0).all()
