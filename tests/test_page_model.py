"""net.js in chromium against torch: every model kind, random and drawn inputs, and how weights reach the page.

A tiny Gradio page (testkit/page_model.py) holds ui/page_model.py's component; the models are published
to it, fetched by the page through the component's server function and run by net.js, and their logits
are compared with the torch modules' (batch norm unfolded, float32). Without /usr/bin/chromium these
tests skip, except under CI, where they fail.

Measured (this file; `-s` prints a line per model): the largest logit difference was 8.6e-6 in absolute
terms (the shipped guide MLP, whose logits reach 30.9) and 7.7e-7 relative to the largest logit (a random
CNN of width 64, crop 2); features differed by at most 1.2e-6 relative, probabilities by 5.7e-7. Float32
rounding in torch and the batch-norm folding account for it (net.js computes in float64). With a
"residual" rule's subspace (RESIDUAL), the page's residual differed from `Subspace.residual` of torch's
features by at most 7.6e-7 relative (a random CNN of width 8; 1.1e-7 for the shipped CNN), and by 1.6e-15
of the page's own float32 features; the scores by 3.2e-6, and the page declined what torch declined. The
bounds below sit just above these.

    python -m pytest -q -s tests/test_page_model.py
"""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.features import logits_and_features
from mnist_demo.reject import Decline, decline_threshold
from mnist_demo.residual import fit
from mnist_demo.segment import split_digits
from mnist_demo.webmodel import FORMAT, PageModel, run_page_model
from testkit.browser import chromium_missing, launch, new_page, save_evidence, wait_until
from testkit.canvases import sketch_values
from testkit.models import random_model
from testkit.page_model import FORWARD, READY, SCORED, served
from testkit.server import ROOT
from ui.page_model import PageModels

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Differences over the reference's largest magnitude (at least 1), just above those measured (docstring).
LOGIT_BOUND = 1e-6
FEATURE_BOUND = 1.5e-6
PROBABILITY_BOUND = 1e-6  # absolute: probabilities are at most 1
RESIDUAL_BOUND = 2e-6  # relative, the page's residual against Subspace.residual of torch's features
OWN_RESIDUAL_BOUND = 1e-12  # relative, ... of the page's own float32 features: float64 sums in another order
SCORE_BOUND = 1e-5  # absolute, the "residual" score (energy less weight times residual), page against torch
RANDOM_INPUTS = 6
SHIPPED = {p.stem: p for p in sorted((ROOT / "weights").glob("*.safetensors"))}
RANDOM = [("mlp", h, 0) for h in (1, 28, 128, 1024)] + [("cnn", w, c) for w in (1, 8, 32, 64) for c in (0, 2, 4)]
# Models published with a "residual" rule (mnist_demo/residual.py): the shipped CNN with its checkpoint's
# (or, where its rule is another score, one fitted here) and random ones with a subspace fitted here.
RESIDUAL = ["shipped cnn", "cnn-8", "cnn-64-crop2", "mlp-128"]
RESIDUAL_RANK = 32
FIT_INPUTS = 256  # noise images whose features the random models' subspaces are fitted on


def _name(kind: str, size: int, crop: int) -> str:
    return f"{kind}-{size}" + (f"-crop{crop}" if crop else "")


@pytest.fixture(scope="module")
def models():
    """name -> torch model: the random ones (batch norm randomised, negative scales included) and the shipped."""
    out = {_name(*spec): random_model(*spec, seed=i) for i, spec in enumerate(RANDOM)}
    out.update({f"shipped {name}": load_checkpoint(path).model for name, path in SHIPPED.items()})
    return out


@pytest.fixture(scope="module")
def inputs():
    """(N, 1, 28, 28) normalised: random values, then the ten digits drawn as strokes and preprocessed."""
    noise = torch.randn(RANDOM_INPUTS, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    drawn = torch.cat([split_digits(value)[0].tensor for _, value in sketch_values()])
    return torch.cat([noise, drawn])


@pytest.fixture(scope="module")
def residual_rules(inputs):
    """name (RESIDUAL) -> (a copy of that model, its "residual" rule). The threshold of a fitted one lies
    between the middle two scores of `inputs`, so that half of them are declined; the copies are other
    objects than `models`' (published without a rule)."""
    noise = torch.randn(FIT_INPUTS, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    out = {}
    for name in RESIDUAL:
        if name.startswith("shipped"):
            checkpoint = load_checkpoint(SHIPPED[name.split()[1]])
            model, rule = checkpoint.model, decline_threshold(checkpoint.metadata)
            if rule is not None and rule.subspace is not None:
                out[name] = (model, rule)
                continue
        else:
            kind, size, *crop = name.split("-")
            spec = (kind, int(size), int(crop[0][4:]) if crop else 0)
            model = random_model(*spec, seed=RANDOM.index(spec))
        with torch.no_grad():
            logits, features = logits_and_features(model, torch.cat([noise, inputs]))
            subspace = fit(features, logits.logsumexp(dim=1), rank=RESIDUAL_RANK)
            scores = Decline(0.0, "residual", subspace).scores(*logits_and_features(model, inputs)).sort().values
        middle = len(scores) // 2  # halfway between two scores: none lies on the threshold
        out[name] = (model, Decline(float(scores[middle - 1] + scores[middle]) / 2, "residual", subspace))
    return out


@pytest.fixture(scope="module")
def site(models, residual_rules):
    """The harness serving every model (the shipped ones also in its dropdown); (PageModels, refs, url)."""
    reason = chromium_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI runs the browser tests and must not skip them")
        pytest.skip(reason)
    registry = PageModels()
    refs = {name: registry.publish(model, pin=name.startswith("shipped")) for name, model in models.items()}
    for name, (model, rule) in residual_rules.items():
        refs[f"residual: {name}"] = registry.publish(model, decline=rule)
    choices = {name: ref for name, ref in refs.items() if name.startswith("shipped")}
    with served(registry, choices) as url:
        yield registry, refs, url


@pytest.fixture(scope="module")
def page(site, request):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = new_page(browser, site[2])
        failures = request.session.testsfailed
        try:
            wait_until(page, READY, why=lambda: "net.js and page_model.js did not load in the page")
            yield page
        finally:
            if request.session.testsfailed > failures:
                save_evidence([page], "test_page_model")
            browser.close()


def _hash(ref: str) -> str:
    return json.loads(ref)["hash"]


@pytest.mark.parametrize("name", [_name(*s) for s in RANDOM] + [f"shipped {n}" for n in SHIPPED])
def test_the_page_computes_what_torch_computes(name, models, inputs, site, page, one_thread):
    model = models[name]
    out = page.evaluate(FORWARD, [_hash(site[1][name]), inputs.flatten(1).tolist()])
    with torch.no_grad():
        logits, features = logits_and_features(model, inputs)
    page_logits = torch.tensor([o["logits"] for o in out])
    page_features = torch.tensor([o["features"] for o in out])
    page_probabilities = torch.tensor([o["probabilities"] for o in out])
    logit_diff = _relative(page_logits, logits)
    feature_diff = _relative(page_features, features)
    probability_diff = (page_probabilities - logits.softmax(1)).abs().max().item()
    print(
        f"\n{name}: max |logit diff| {(page_logits - logits).abs().max().item():.2e} "
        f"(logits up to {logits.abs().max().item():.1f}; relative {logit_diff:.1e}), "
        f"features relative {feature_diff:.1e}, probabilities {probability_diff:.1e}"
    )
    assert page_features.shape == features.shape
    assert logit_diff < LOGIT_BOUND
    assert feature_diff < FEATURE_BOUND
    assert probability_diff < PROBABILITY_BOUND


@pytest.mark.parametrize("name", RESIDUAL)
def test_the_page_computes_the_residual_and_applies_the_rule_as_torch(
    name, residual_rules, inputs, site, page, one_thread
):
    model, rule = residual_rules[name]
    ref = json.loads(site[1][f"residual: {name}"])
    assert ref["decline_score"] == "residual" and ref["decline_weight"] == rule.subspace.weight
    out = page.evaluate(SCORED, [ref["hash"], inputs.flatten(1).tolist(), ref])
    with torch.no_grad():
        logits, features = logits_and_features(model, inputs)
    residual = rule.subspace.residual(features)
    scores = rule.scores(logits, features)
    page_residual = torch.tensor([o["residual"] for o in out], dtype=torch.float64)
    page_features = torch.tensor([o["features"] for o in out], dtype=torch.float32)  # net.js's float32 values
    page_scores = torch.tensor([o["score"] for o in out], dtype=torch.float64)
    # net.js's arithmetic on its own features is Subspace.residual's, but for the order of float64 sums
    own = (page_residual - rule.subspace.residual(page_features)).abs().max() / residual.abs().max()
    residual_diff = ((page_residual - residual).abs() / residual).max().item()
    score_diff = (page_scores - scores).abs().max().item()
    torch_declined = (scores < rule.below).tolist()
    page_declined = [o["declined"] for o in out]
    near = [i for i, s in enumerate(scores.tolist()) if abs(s - rule.below) <= SCORE_BOUND]
    print(
        f"\n{name}: residuals up to {residual.max().item():.1f}, relative difference {residual_diff:.1e}"
        f" (from the page's own features {own.item():.1e}); scores differ by {score_diff:.1e};"
        f" declined {sum(page_declined)} of {len(out)} (torch {sum(torch_declined)}, {len(near)} near the threshold)"
    )
    assert own < OWN_RESIDUAL_BOUND
    assert residual_diff < RESIDUAL_BOUND
    assert score_diff < SCORE_BOUND
    assert all(p == t for i, (p, t) in enumerate(zip(page_declined, torch_declined)) if i not in near)


def _relative(page: torch.Tensor, reference: torch.Tensor) -> float:
    """Largest difference over the reference's largest magnitude (at least 1): float32 rounding's scale."""
    return ((page - reference).abs().max() / reference.abs().max().clamp(min=1)).item()


def test_the_component_value_picks_the_model_and_the_page_keeps_each_version(site, page):
    _, refs, _ = site
    fetches = []
    page.on("request", lambda r: fetches.append(r) if "component_server" in r.url else None)

    def pick(name: str) -> None:
        page.locator("#pick input").click()
        page.get_by_role("option", name=name).click()
        expected = _hash(refs[f"shipped {name}"])
        wait_until(
            page,
            "(h) => window.mnistDemo.models.current && window.mnistDemo.models.current.hash === h",
            expected,
            why=lambda: f"the page did not switch to {name}; it runs {page.evaluate(CURRENT)}",
        )

    names = list(SHIPPED)
    pick(names[0])
    pick(names[1])
    fetched = len(fetches)
    assert fetched <= 2  # at most one fetch per model (the forward test may have fetched them already)
    pick(names[0])  # back to a model the page has seen: from its cache, no request
    assert len(fetches) == fetched
    assert page.evaluate(CURRENT)["kind"] == json.loads(refs[f"shipped {names[0]}"])["kind"]


CURRENT = "() => { const n = window.mnistDemo.models.current; return n && n.header; }"


def test_a_layer_list_no_model_makes_runs_the_same(page, one_thread):
    """Odd channel and row counts and a conv with no pooling after it: the paths our models never take."""
    generator = torch.Generator().manual_seed(5)
    tensors = {"a": (3, 1, 3, 3), "b": (3, 3, 3, 3), "scale": (3,), "shift": (3,), "w": (10, 147), "bias": (10,)}
    refs, offset = {}, 0
    for key, shape in tensors.items():
        refs[key] = {"offset": offset, "shape": list(shape)}
        offset += math.prod(shape)
    layers = [
        {"op": "conv3x3", "in": 1, "out": 3, "weight": refs["a"]},  # 3 channels: one pair and a lone one
        {"op": "maxpool2"},
        {"op": "maxpool2"},  # 28 -> 14 -> 7
        {"op": "conv3x3", "in": 3, "out": 3, "weight": refs["b"]},  # 7 rows, all kept: no pool follows
        {"op": "affine", "channels": 3, "scale": refs["scale"], "shift": refs["shift"]},
        {"op": "relu"},
        {"op": "linear", "in": 147, "out": 10, "weight": refs["w"], "bias": refs["bias"]},
    ]
    header = {"format": FORMAT, "input": [1, 28, 28], "classes": 10, "layers": layers, "floats": offset}
    custom = PageModel(header, torch.randn(offset, generator=generator).numpy())
    x = torch.randn(3, 1, 28, 28, generator=generator)
    out = page.evaluate(
        "([payload, images]) => { const net = MnistNet.fromPayload(payload);"
        " return images.map((x) => Array.from(net.forward(x).logits)); }",
        [custom.payload(), x.flatten(1).tolist()],
    )
    with torch.no_grad():
        expected, _ = run_page_model(custom, x)
    assert _relative(torch.tensor(out), expected) < LOGIT_BOUND


def test_unknown_models_and_bad_payloads_are_refused_clearly(site, page):
    error = page.evaluate("(h) => window.mnistDemo.models.get(h).then(() => 'loaded', (e) => e.message)", "0" * 32)
    assert "no longer holds" in error
    registry, refs, _ = site
    payload = registry.payload(_hash(refs["cnn-8-crop2"]))
    broken = page.evaluate(
        """(payload) => {
          const tries = {
            format: { ...payload, header: { ...payload.header, format: 'other/1' } },
            truncated: { ...payload, weights: payload.weights.slice(0, 400) },
            shape: { ...payload, header: { ...payload.header, layers: payload.header.layers.map(
              (l) => l.op === 'linear' ? { ...l, in: l.in + 1 } : l) } },
          };
          return Object.fromEntries(Object.entries(tries).map(([k, p]) => {
            try { MnistNet.fromPayload(p); return [k, 'accepted']; } catch (e) { return [k, e.message]; }
          }));
        }""",
        payload,
    )
    assert "unsupported model format" in broken["format"]
    assert "bytes, the header says" in broken["truncated"]
    assert "expects" in broken["shape"] or "should have shape" in broken["shape"]
    payload = registry.payload(_hash(refs["residual: cnn-8"]))
    broken = page.evaluate(
        """(payload) => {
          const residual = (change) => ({ ...payload, header: { ...payload.header,
            residual: { ...payload.header.residual, ...change } } });
          const r = payload.header.residual;
          const tries = {
            features: residual({ features: r.features + 1 }),
            rank: residual({ rank: 0 }),
            basis: residual({ basis: { ...r.basis, shape: [r.features, r.rank + 1] } }),
            outside: residual({ mean: { ...r.mean, offset: payload.header.floats - 1 } }),
          };
          return Object.fromEntries(Object.entries(tries).map(([k, p]) => {
            try { MnistNet.fromPayload(p); return [k, 'accepted']; } catch (e) { return [k, e.message]; }
          }));
        }""",
        payload,
    )
    assert "does not fit" in broken["features"] and "does not fit" in broken["rank"]
    assert "should have shape" in broken["basis"]
    assert "lies outside the weights" in broken["outside"]
    with pytest.raises(Exception, match="reads 784 values"):
        page.evaluate(FORWARD, [_hash(refs["cnn-8-crop2"]), [[0.0] * 100]])
