"""The digits' subspace of a network's features (mnist_demo/residual.py): fitting, the residual, the metadata.

python -m pytest tests/test_residual.py
"""

from __future__ import annotations

import math

import pytest
import torch

from mnist_demo import residual
from mnist_demo.residual import Subspace


def planted(n: int = 2000, features: int = 12, rank: int = 3, noise: float = 0.01, seed: int = 0) -> torch.Tensor:
    """Features that vary along `rank` directions, plus a little noise everywhere, around a mean of 5."""
    g = torch.Generator().manual_seed(seed)
    directions = torch.linalg.qr(torch.randn(features, rank, generator=g))[0]
    return 5 + torch.randn(n, rank, generator=g) * 3 @ directions.T + noise * torch.randn(n, features, generator=g)


def test_the_fit_finds_the_planted_subspace():
    x = planted()
    energies = torch.randn(len(x), generator=torch.Generator().manual_seed(1))
    s = residual.fit(x, energies, rank=3, weight=0.5)
    assert s.features == 12 and s.rank == 3
    assert torch.allclose(s.basis.T @ s.basis, torch.eye(3, dtype=torch.float64), atol=1e-6)  # orthonormal
    assert torch.allclose(s.mean, x.double().mean(0), atol=1e-5)
    # The training points lie almost in it; a point pushed off it (orthogonally) has that push as residual.
    assert float(s.residual(x).mean()) < 0.05
    off = torch.linalg.qr(torch.cat([s.basis, torch.randn(12, 1, dtype=torch.float64)], dim=1))[0][:, -1]
    assert float(s.residual((s.mean + 4 * off)[None])) == pytest.approx(4, rel=1e-5)
    # The weight is relative to the spreads: weight * std(energy) / std(residual) of the training digits.
    expected = 0.5 * float(energies.double().std()) / float(s.residual(x).std())
    assert s.weight == pytest.approx(expected, rel=1e-5)


def test_what_travels_is_float32_and_comes_back_the_same():
    s = residual.fit(planted(), torch.randn(2000), rank=3)
    meta = s.to_metadata()
    assert meta["features"] == 12 and meta["rank"] == 3 and meta["weight"] == s.weight
    back = residual.from_metadata(meta, 12)
    assert back is not None and torch.equal(back.mean, s.mean) and torch.equal(back.basis, s.basis)
    x = planted(seed=3)
    assert torch.allclose(
        back.residual(x), s.residual(x), rtol=1e-12, atol=0
    )  # same values; BLAS may sum in another order
    assert s.floats().dtype.name == "float32" and s.floats().size == 12 * 4


def _bad(**changes) -> dict:
    meta = residual.fit(planted(), torch.randn(2000), rank=3).to_metadata()
    return {**meta, **changes}


@pytest.mark.parametrize(
    "meta, features",
    [
        (_bad(), 13),  # a subspace for another model's features
        (_bad(rank=4), 12),  # the basis holds 3 columns, not 4
        (_bad(rank=0), 12),
        (_bad(rank=True), 12),
        (_bad(features="12"), 12),
        (_bad(weight=-1), 12),
        (_bad(weight=math.inf), 12),
        (_bad(weight="0.5"), 12),
        (_bad(mean="not base64!"), 12),
        (_bad(mean=_bad()["mean"][:-4]), 12),  # too short
        (_bad(mean=None), 12),
        (
            _bad(
                mean=Subspace(torch.full((12,), math.nan, dtype=torch.float64), torch.eye(12, 3), 1.0).to_metadata()[
                    "mean"
                ]
            ),
            12,
        ),
        ("a string", 12),
        (None, 12),
    ],
)
def test_a_subspace_that_makes_no_sense_is_refused(meta, features):
    assert residual.from_metadata(meta, features) is None


def test_a_subspace_too_big_for_the_header_is_refused_before_decoding():
    features = residual.MAX_FLOATS // 10
    meta = {"features": features, "rank": 10, "weight": 1.0, "mean": "", "basis": ""}
    assert residual.from_metadata(meta, features) is None  # 11 x features floats: over MAX_FLOATS
    with pytest.raises(ValueError, match="rank"):
        residual.fit(planted(), torch.randn(2000), rank=residual.MAX_RANK + 1)


def test_the_residual_refuses_features_of_another_size():
    s = residual.fit(planted(), torch.randn(2000), rank=3)
    with pytest.raises(ValueError, match="features"):
        s.residual(torch.zeros(2, 11))
