"""How far a drawing's features lie off the digits' own subspace: the second half of the "residual" score.

A network's features (the classifier's input, `mnist_demo.features`) for MNIST's digits vary mostly
along a few directions. A non-digit can still land on a large logit, but its features tend to leave
that subspace: the part of `f - mean` outside the top RANK principal directions of the training digits'
features (the residual of ViM, Wang et al., CVPR 2022) is large. The energy and this residual see
different things, so `mnist_demo.reject` combines them: score = energy - weight * residual.

The subspace is fitted on the training digits' features (`fit`), and travels in the checkpoint's
metadata as float32 little-endian base64 (`to_metadata`, `from_metadata`, checked before decoding);
the page gets the same floats with the model (`mnist_demo/webmodel.py`) and computes the residual as
`residual` does, in float64. RANK and WEIGHT were chosen on TUNE data only (scripts/issue15/residual.py:
TUNE-font digits and TUNE non-digits): with the shipped CNN, 1% of TUNE digits declined, energy alone
declined 93.8% of TUNE non-digits, energy minus the residual 96-97% for every rank from 16 to 64 and
every weight from 0.2 to 0.5.

    python -m mnist_demo.reject weights/cnn.safetensors --score residual    # fits it, then calibrates
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

RANK = 32  # principal directions of the digits' features kept as "the digits' subspace"
# The residual's weight beside the energy, relative to their spreads over the training digits: the
# score moves WEIGHT times as much (in standard deviations) with the residual as with the energy.
WEIGHT = 0.5
MAX_RANK = 64  # a checkpoint's subspace is refused past this rank...
MAX_FLOATS = 160_000  # ...or past this many floats (mean and basis: 0.9 MB of base64, under the header's 1 MB)
DECODED_KEPT = 16  # decoded subspaces kept (the shipped CNN's, visitors' fine-tuned copies of it)
FIT_BATCH = 10_000  # digits per covariance update: bounds the (batch, features) float64 copy


@dataclass(frozen=True, eq=False)
class Subspace:
    """The digits' subspace of a network's features: `mean` (F,), an orthonormal `basis` (F, RANK) and the
    residual's `weight` in the score. Both tensors are float64 holding float32 values (what travels)."""

    mean: torch.Tensor
    basis: torch.Tensor
    weight: float

    @property
    def features(self) -> int:
        return self.mean.numel()

    @property
    def rank(self) -> int:
        return self.basis.shape[1]

    def residual(self, features: torch.Tensor) -> torch.Tensor:
        """(N, F) features -> (N,) float64: the length of each one's part off the subspace."""
        if features.ndim != 2 or features.shape[1] != self.features:
            raise ValueError(f"features of shape {tuple(features.shape)}; this subspace needs (N, {self.features})")
        z = features.double() - self.mean
        return (z - (z @ self.basis) @ self.basis.T).norm(dim=1)

    def to_metadata(self) -> dict[str, Any]:
        """JSON-able: the sizes, the weight and both tensors as float32 little-endian base64."""
        return {
            "features": self.features,
            "rank": self.rank,
            "weight": self.weight,
            "mean": _encode(self.mean),
            "basis": _encode(self.basis),  # (F, RANK), row-major
        }

    def floats(self) -> np.ndarray:
        """The mean then the basis (row-major), float32: what the page model carries."""
        return np.concatenate([self.mean.float().numpy(), self.basis.float().numpy().ravel()])


def _encode(t: torch.Tensor) -> str:
    return base64.b64encode(t.float().contiguous().numpy().astype("<f4").tobytes()).decode("ascii")


def _decode(text: object, count: int) -> torch.Tensor | None:
    """`count` float32 values from base64 `text`, as float64; None for anything else (checked before decoding)."""
    if not isinstance(text, str) or len(text) != 4 * math.ceil(4 * count / 3):
        return None
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(data) != 4 * count:
        return None
    values = np.frombuffer(data, dtype="<f4")
    return torch.from_numpy(values.astype(np.float64)) if np.isfinite(values).all() else None


def from_metadata(value: object, features: int) -> Subspace | None:
    """The subspace a checkpoint's metadata holds for a model with `features` features; None when absent
    or not a sensible one (wrong sizes, too big, not numbers)."""
    if not isinstance(value, dict):
        return None
    rank, size, weight = value.get("rank"), value.get("features"), value.get("weight")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (rank, size)) or size != features:
        return None
    if not (1 <= rank <= min(MAX_RANK, features) and features * (rank + 1) <= MAX_FLOATS):
        return None
    if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not (0 <= weight < math.inf):
        return None
    mean, basis = value.get("mean"), value.get("basis")
    if not isinstance(mean, str) or not isinstance(basis, str):
        return None
    return _decoded(mean, basis, features, rank, float(weight))


@functools.lru_cache(maxsize=DECODED_KEPT)
def _decoded(mean_text: str, basis_text: str, features: int, rank: int, weight: float) -> Subspace | None:
    """Decoded once per checkpoint: the app asks for a checkpoint's rule on every reading, and a string
    keeps its hash, so a repeated call costs a dictionary lookup, not 200 kB of base64."""
    mean, basis = _decode(mean_text, features), _decode(basis_text, features * rank)
    if mean is None or basis is None:
        return None
    return Subspace(mean, basis.reshape(features, rank), weight)


@torch.no_grad()
def fit(features: torch.Tensor, energies: torch.Tensor, rank: int = RANK, weight: float = WEIGHT) -> Subspace:
    """The subspace of the training digits' `features` (N, F) and the residual's weight, from their spreads
    and the `energies` (N,) of the same digits: weight * std(energy) / std(residual)."""
    if not 1 <= rank <= min(MAX_RANK, features.shape[1]):
        raise ValueError(f"rank must lie between 1 and {min(MAX_RANK, features.shape[1])}, got {rank}")
    mean = features.double().mean(dim=0)
    covariance = torch.zeros(features.shape[1], features.shape[1], dtype=torch.float64)
    for start in range(0, len(features), FIT_BATCH):
        z = features[start : start + FIT_BATCH].double() - mean
        covariance += z.T @ z
    _, vectors = torch.linalg.eigh(covariance / len(features))  # ascending eigenvalues
    basis = vectors[:, -rank:].flip(1)
    # What travels is float32: round here, so that the weight and every later residual see those values.
    subspace = Subspace(mean.float().double(), basis.float().double(), 1.0)
    spread = float(subspace.residual(features).std())
    scale = float(energies.double().std()) / spread if spread > 0 else 0.0
    return Subspace(subspace.mean, subspace.basis, round(weight * scale, 6))
