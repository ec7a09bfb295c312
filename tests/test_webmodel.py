"""The page's model format: batch norm folded correctly (negative scales too), hashes, payloads and limits,
and the "residual" score's subspace carried with the weights.

The format is checked here through `run_page_model`, its torch reading; tests/test_page_model.py runs the
same formats through net.js in chromium.

    python -m pytest -q tests/test_webmodel.py
"""

from __future__ import annotations

import base64
import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.features import logits_and_features
from mnist_demo.inference import prepare
from mnist_demo.models import build_model
from mnist_demo.reject import Decline, decline_threshold
from mnist_demo.residual import Subspace, fit
from mnist_demo.webmodel import (
    FORMAT,
    MAX_PAGE_FLOATS,
    PageModelError,
    page_model,
    page_residual,
    run_page_model,
)
from testkit.models import random_model
from testkit.server import ROOT

SHIPPED = sorted((ROOT / "weights").glob("*.safetensors"))
TOLERANCE = 1e-4  # float32 logits of order 1-10: folding only reorders roundings (measured below 1e-5)

KINDS = [("mlp", 1, 0), ("mlp", 28, 0), ("mlp", 128, 0)] + [("cnn", w, c) for w in (1, 8) for c in range(5)]


@pytest.mark.parametrize("kind, size, crop", KINDS)
def test_the_format_computes_the_model(kind, size, crop):
    model = random_model(kind, size, crop, seed=size + crop)
    x = torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits, features = run_page_model(page_model(model), x)
        expected, expected_features = logits_and_features(model, x)
        assert torch.equal(expected, model(x))  # the features split the model where it is
    assert logits.shape == (6, 10) and features.shape == expected_features.shape
    assert (logits - expected).abs().max() < TOLERANCE
    assert (features - expected_features).abs().max() < TOLERANCE


def test_negative_batch_norm_scales_are_kept_after_the_pooling():
    model = random_model("cnn", 8, seed=3)
    bn = model.features[0][2]
    assert (bn.weight < 0).any() and (bn.weight > 0).any()
    page = page_model(model)
    affine = page.header["layers"][2]
    signs = page.weights[affine["scale"]["offset"] : affine["scale"]["offset"] + 8]
    assert set(signs.tolist()) == {-1.0, 1.0}
    assert np.array_equal(signs < 0, (bn.weight < 0).numpy())

    # Folding the signed scale into the conv, as for conv -> BN -> pool, would be wrong: the max-pool
    # would pick each negative channel's minimum. The test above would see it; show that it would.
    naive = copy.deepcopy(page)
    naive.weights[affine["scale"]["offset"] : affine["scale"]["offset"] + 8] = 1.0
    conv = page.header["layers"][0]["weight"]
    w = naive.weights[conv["offset"] : conv["offset"] + 8 * 9].reshape(8, 9)
    w *= signs[:, None]
    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert (run_page_model(naive, x)[0] - model(x)).abs().max() > 0.01
        assert (run_page_model(page, x)[0] - model(x)).abs().max() < TOLERANCE


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_models_convert(path):
    checkpoint = load_checkpoint(path)
    model = checkpoint.model
    page = page_model(model)
    assert page.header["kind"] == checkpoint.name and page.header["size"] == checkpoint.metadata["size"]
    assert page.header["floats"] == page.weights.size == sum(p.numel() for p in model.parameters())
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (run_page_model(page, x)[0] - model(x)).abs().max() < TOLERANCE
    # The app's inference copies are channels-last; their weights must be read in (C, H, W) order anyway.
    assert page_model(prepare(copy.deepcopy(model))).hash == page.hash


def test_payload_round_trips_and_stays_json():
    page = page_model(random_model("cnn", 4, crop=2))
    payload = json.loads(json.dumps(page.payload()))
    data = base64.b64decode(payload["weights"])
    assert np.array_equal(np.frombuffer(data, "<f4"), page.weights)
    header = payload["header"]
    assert header["format"] == FORMAT and header["crop"] == 2 and header["floats"] * 4 == len(data)
    assert header["features"] == 4 * 4 * 3 * 3 and header["normalization"]["std"] > 0
    for layer in header["layers"]:
        for ref in (v for v in layer.values() if isinstance(v, dict)):
            assert ref["offset"] >= 0 and ref["offset"] + np.prod(ref["shape"]) <= header["floats"]
    assert len(json.dumps(header)) < 2000  # the header is small; the weights are the payload


def test_the_hash_follows_the_content():
    a, b = random_model("mlp", 16, seed=0), random_model("mlp", 16, seed=0)
    assert page_model(a).hash == page_model(b).hash  # equal weights, equal key: the page's cache hits
    with torch.no_grad():
        b.fc2.bias[3] += 1e-6
    assert page_model(a).hash != page_model(b).hash
    cnn = random_model("cnn", 4, seed=0)
    before = page_model(cnn).hash
    with torch.no_grad():
        cnn.features[1][2].running_var[0] *= 2  # batch-norm statistics are buffers, not parameters
    assert page_model(cnn).hash != before


def test_too_big_or_foreign_models_are_refused_clearly():
    big = build_model("cnn", 256)  # 5.9 million weights
    assert sum(p.numel() for p in big.parameters()) > MAX_PAGE_FLOATS
    with pytest.raises(PageModelError, match="too many to send to the page"):
        page_model(big)
    with pytest.raises(TypeError, match="not a model of this package"):
        page_model(nn.Linear(784, 10))
    broken = random_model("mlp", 4)
    with torch.no_grad():
        broken.fc1.weight[0, 0] = float("nan")
    with pytest.raises(PageModelError, match="NaN"):
        page_model(broken)


def test_the_registry_serves_published_models_by_hash_and_drops_the_oldest():
    from ui.page_model import PageModels

    shipped, a, b = (random_model("cnn", 4, seed=i) for i in range(3))
    floats = page_model(a).weights.size
    registry = PageModels(max_floats=2 * floats)  # room for two of these
    pinned = json.loads(registry.publish(shipped, pin=True))
    ref = json.loads(registry.publish(a))
    assert set(ref) == {"hash", "kind", "size", "crop", "decline_below", "decline_score", "decline_weight"}
    assert ref["kind"] == "cnn" and ref["size"] == 4
    assert ref["decline_below"] is None  # published without a threshold: the page never declines
    assert ref["decline_score"] is None and ref["decline_weight"] is None
    assert registry.known(a) == ref["hash"] and registry.known(b) is None  # b: not published, not converted
    payload = registry.payload(ref["hash"])
    assert payload["header"] == page_model(a).header
    assert registry.payload(ref["hash"].upper()) is None  # only our exact keys, never a lookup by pattern
    for bad in (None, 3, ["x"], "../weights", "0" * 32):
        assert registry.payload(bad) is None
    registry.publish(b)  # over the limit: the oldest unpinned goes
    assert registry.payload(ref["hash"]) is None and registry.known(a) is None
    assert registry.payload(pinned["hash"]) is not None and len(registry) == 2


def subspace_of(model: nn.Module, rank: int = 8, seed: int = 0) -> Subspace:
    """A residual score's subspace for `model`, fitted (as reject.fit_subspace) on its features of noise."""
    x = torch.randn(64, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        logits, features = logits_and_features(model, x)
    return fit(features, logits.logsumexp(dim=1), rank=rank)


@pytest.mark.parametrize("kind, size, crop", [("cnn", 4, 2), ("cnn", 8, 0), ("mlp", 64, 0)])
def test_the_subspace_travels_after_the_network_and_gives_the_residual(kind, size, crop):
    model = random_model(kind, size, crop, seed=1)
    subspace = subspace_of(model)
    plain, page = page_model(model), page_model(model, subspace)
    features, rank = plain.header["features"], subspace.rank
    block = page.header["residual"]
    assert "residual" not in plain.header
    assert block == {
        "features": features,
        "rank": rank,
        "mean": {"offset": plain.weights.size, "shape": [features]},
        "basis": {"offset": plain.weights.size + features, "shape": [features, rank]},
    }
    assert page.header["floats"] == page.weights.size == plain.weights.size + features * (rank + 1)
    assert np.array_equal(page.weights[: plain.weights.size], plain.weights)  # the network is the same
    assert np.array_equal(page.weights[plain.weights.size :], subspace.floats())
    assert page.hash != plain.hash  # the page's cache keeps both apart
    assert page_model(model, subspace_of(model, seed=1)).hash != page.hash  # another subspace: another hash
    assert page_residual(plain, torch.zeros(1, features)) is None
    x = torch.randn(5, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits, page_features = run_page_model(page, x)
        _, torch_features = logits_and_features(model, x)
    assert torch.equal(logits, run_page_model(plain, x)[0])  # the subspace changes nothing else
    residual = page_residual(page, page_features)
    assert residual.dtype == torch.float64 and residual.shape == (5,)
    expected = subspace.residual(page_features)
    assert ((residual - expected).abs() / expected).max() < 1e-9
    # ... and from the torch modules' own features, within the folding's rounding (TOLERANCE)
    assert ((residual - subspace.residual(torch_features)).abs() / expected).max() < TOLERANCE


def test_a_subspace_of_another_width_or_too_big_is_refused():
    model = random_model("cnn", 4, seed=0)
    other = subspace_of(random_model("cnn", 8, seed=0))
    with pytest.raises(PageModelError, match="subspace is of"):
        page_model(model, other)
    wide = random_model("mlp", 2048, seed=0)  # 1.6 million weights, with a subspace of 2048 x 2048 over the limit
    huge = Subspace(torch.zeros(2048, dtype=torch.float64), torch.zeros(2048, 2048, dtype=torch.float64), 1.0)
    with pytest.raises(PageModelError, match="too many to send to the page"):
        page_model(wide, huge)


def test_the_registry_sends_a_residual_rules_subspace_with_the_weights():
    from ui.page_model import PageModels

    model = random_model("cnn", 4, seed=0)
    subspace = subspace_of(model)
    rule = Decline(1.5, "residual", subspace)
    registry = PageModels()
    ref = json.loads(registry.publish(model, decline=rule))
    assert (ref["decline_below"], ref["decline_score"], ref["decline_weight"]) == (1.5, "residual", subspace.weight)
    header = registry.payload(ref["hash"])["header"]
    assert header == page_model(model, subspace).header and header["residual"]["rank"] == subspace.rank
    assert json.loads(registry.publish(model, decline=rule)) == ref and registry.conversions == 1
    # Published without the subspace (no rule, another score), the same object is another page model.
    energy = json.loads(registry.publish(model, decline=Decline(2.0, "energy")))
    assert energy["hash"] == page_model(model).hash != ref["hash"] and energy["decline_weight"] is None
    assert "residual" not in registry.payload(energy["hash"])["header"]
    assert json.loads(registry.publish(model, decline=rule))["hash"] == ref["hash"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_a_shipped_models_rule_goes_to_the_page_with_its_subspace(path):
    from ui.page_model import PageModels

    checkpoint = load_checkpoint(path)
    rule = decline_threshold(checkpoint.metadata)
    assert rule is not None
    registry = PageModels()
    ref = json.loads(registry.publish(checkpoint.model, pin=True, decline=rule))
    assert (ref["decline_below"], ref["decline_score"]) == (rule.below, rule.score)
    page = registry._kept[ref["hash"]]
    if rule.score != "residual":
        assert "residual" not in page.header and ref["decline_weight"] is None
        return
    assert ref["decline_weight"] == rule.subspace.weight
    assert page.header["residual"]["features"] == page.header["features"] == rule.subspace.features
    assert page.header["floats"] <= MAX_PAGE_FLOATS
    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, features = run_page_model(page, x)
        _, torch_features = logits_and_features(checkpoint.model, x)
    assert torch.equal(page_residual(page, features), rule.subspace.residual(features))
    expected = rule.subspace.residual(torch_features)
    assert ((page_residual(page, features) - expected).abs() / expected).max() < TOLERANCE
