"""Linear maps from a network's features to the plane: the shrinkage LDA the map uses, PCA to compare, and
the Procrustes turn that keeps one epoch's map in line with the last.

Which projection. A linear discriminant (LDA) with its within-class covariance shrunk half-way to a
multiple of the identity (`SHRINKAGE`), rather than PCA, because it separates the digits better on
most of the maps people see: the models the app trains (the CNN at the app's defaults, the MLPs) and
untrained networks; the shrinkage keeps it stable with 576-2,304 features from 2,000 digits and with
dead units. Measured as the share of held-out test digits whose 2-D point lies nearest the centre of
their own digit (nearest-centroid accuracy; chance is 10%), by
`python -m mnist_demo.atlas weights/cnn.safetensors weights/mlp.safetensors weights/mlp-guide.safetensors`:

    model                       PCA     LDA, shrinkage 0.05 / 0.2 / 0.5 / 0.8
    shipped CNN (99.65%)        90.3%   78.8% / 82.4% / 85.9% / 92.0%
    shipped MLP-128 (98.05%)    48.8%   71.4% / 67.3% / 63.9% / 59.9%
    guide MLP-28 (94.75%)       61.8%   65.8% / 64.2% / 56.8% / 58.5%
    untrained CNN (width 32)    32.4%   52.8% / 58.6% / 62.2% / 56.4%

and per epoch of the Train tab's default run (CNN width 16; `python -m bench --only atlas` prints it):
LDA 70.0% / 80.0% / 80.0% against PCA 30.3% / 69.5% / 72.4%, untrained and after epochs 1 and 2.
PCA wins on the shipped CNN, whose features already vary most between digits, and on the guide's
28 units; LDA wins everywhere else, by 8-40 points on untrained networks and during training. Less
shrinkage overfits the 2,000 fitted digits (up to 14 points better on them than on held-out ones);
more loses the MLPs; at 0.5 the map digits themselves separate 2-4 points better than held-out ones
(72.4% / 83.0% / 84.0% in that run). An untrained CNN's random features already set digits apart
somewhat (LDA finds 60-70% there, PCA 30%): the map says so honestly, and training adds 10-25 points.

    python -m mnist_demo.atlas weights/cnn.safetensors      # PCA against LDA, as above
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mnist_demo.data import NUM_CLASSES

SHRINKAGE = 0.5  # share of the within-class covariance replaced by its mean variance (see the docstring)
TINY = 1e-12  # a variance below this is no variance: the features are constant


@dataclass(frozen=True)
class Projection:
    """A linear map from features to the plane: point = (features - mean) @ matrix.T."""

    mean: np.ndarray  # (F,) float32
    matrix: np.ndarray  # (2, F) float32

    def __call__(self, feats: torch.Tensor | np.ndarray) -> np.ndarray:
        """(N, F) features -> (N, 2) float32 points."""
        feats = np.asarray(feats, np.float32)
        if feats.ndim != 2 or feats.shape[1] != len(self.mean):
            raise ValueError(f"expected features (N, {len(self.mean)}), got {feats.shape}")
        return (feats - self.mean) @ self.matrix.T

    def turned(self, rotation: np.ndarray) -> Projection:
        """The same projection followed by a 2x2 rotation or reflection (points @ rotation)."""
        return Projection(self.mean, (rotation.T @ self.matrix).astype(np.float32))

    def to_json(self) -> dict:
        """What the page needs to place a drawing itself: {"mean": [F], "matrix": [[F], [F]]}."""
        return {"mean": self.mean.tolist(), "matrix": self.matrix.tolist()}


def _class_means(feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(10, F) mean features of each digit; a digit absent from `labels` gets the overall mean."""
    sums = torch.zeros(NUM_CLASSES, feats.shape[1]).index_add_(0, labels, feats)
    counts = torch.bincount(labels, minlength=NUM_CLASSES).float()[:, None]
    return torch.where(counts > 0, sums / counts.clamp(min=1), feats.mean(0))


def fit_lda(feats: torch.Tensor, labels: torch.Tensor, shrinkage: float = SHRINKAGE) -> Projection:
    """The two directions that best set the digits' means apart relative to the spread within each digit.

    Shrinkage LDA: the within-class covariance S is replaced by (1 - s) S + s (trace(S) / F) I, which is
    invertible whatever the number of features, then the generalised eigenproblem B v = l S v is solved
    through S's Cholesky factor. The between-class scatter B has rank 9 at most, so only a (F, 10)
    matrix needs decomposing. Each direction is scaled to unit within-class spread (v' S v = 1): one
    unit on the map is one standard deviation of a digit's cloud.
    """
    feats = torch.as_tensor(feats, dtype=torch.float32)
    n, width = feats.shape
    mean = feats.mean(0)
    means = _class_means(feats, labels)
    within = feats - means[labels]
    scatter = within.T @ within / n  # (F, F)
    level = float(torch.trace(scatter)) / width
    if level < TINY:  # constant features (a dead network): every digit at the centre
        return Projection(mean.numpy(), np.zeros((2, width), np.float32))
    scatter.mul_(1 - shrinkage).diagonal().add_(shrinkage * level)
    factor = torch.linalg.cholesky(scatter)
    weights = torch.bincount(labels, minlength=NUM_CLASSES).float() / n
    between = (means - mean) * weights.sqrt()[:, None]  # (10, F): B = between.T @ between
    whitened = torch.linalg.solve_triangular(factor, between.T, upper=False)  # (F, 10)
    directions, _, _ = torch.linalg.svd(whitened, full_matrices=False)
    matrix = torch.linalg.solve_triangular(factor.T, directions[:, :2], upper=True).T  # (2, F)
    return Projection(mean.numpy(), matrix.contiguous().numpy())


def fit_pca(feats: torch.Tensor) -> Projection:
    """The two directions of largest variance (for comparison: the map uses `fit_lda`)."""
    feats = torch.as_tensor(feats, dtype=torch.float64)
    mean = feats.mean(0)
    centred = feats - mean
    _, vectors = torch.linalg.eigh(centred.T @ centred)
    return Projection(mean.float().numpy(), vectors[:, -2:].flip(1).T.float().contiguous().numpy())


def procrustes(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x2 rotation or reflection R that brings `points` @ R closest to `target` (both (N, 2))."""
    u, _, vt = np.linalg.svd(points.T.astype(np.float64) @ target.astype(np.float64))
    return (u @ vt).astype(np.float32)


def orientation(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A 2x2 sign flip that puts the 0s' centre at x >= 0 and y >= 0: the same map looks the same each time."""
    centre = points[labels == 0].mean(0) if (labels == 0).any() else points.mean(0)
    return np.diag(np.where(centre < 0, -1.0, 1.0)).astype(np.float32)


def centroid_accuracy(
    points: np.ndarray, labels: np.ndarray, eval_points: np.ndarray, eval_labels: np.ndarray
) -> float:
    """Share of `eval_points` nearest the centre of their own digit, the centres taken from `points`."""
    present = np.unique(labels)
    centres = np.stack([points[labels == d].mean(0) for d in present])  # (D, 2)
    nearest = present[((eval_points[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)]
    return float((nearest == eval_labels).mean())
