"""The weights follow the model: `ui.page_model.page_reference` for each event that changes the Draw tab's model.

As the app's handlers will call it: a picker value and the visitor in, the page-model component's value
out (or None: the server reads). Each model is converted once, a training run's new epoch is a new
version, what the server keeps stays bounded, and a model the page cannot run leaves the page without one.

    python -m pytest -q tests/test_page_reference.py
"""

from __future__ import annotations

import json

import gradio as gr
import pytest

from mnist_demo import mapview, webmodel
from mnist_demo.checkpoint import Checkpoint
from mnist_demo.reject import decline_threshold
from mnist_demo.session import Visitor
from testkit.models import random_model
from ui.common import Models
from ui.draw import DrawHandlers
from ui.page_model import PAGE_READING, ModelInPage, PageModels, page_model_html, page_reference
from ui.reading import drawn_signature


def own(seed: int, kind: str = "cnn", size: int = 4) -> Checkpoint:
    return Checkpoint(random_model(kind, size, seed=seed), {"model": kind})


def test_a_picked_model_is_converted_once_and_named_by_its_hash(models: Models):
    registry = PageModels()
    ref = page_reference(registry, models, "cnn", None)
    assert json.loads(ref)["kind"] == "cnn"
    assert registry.payload(json.loads(ref)["hash"])["header"]["kind"] == "cnn"
    assert page_reference(registry, models, "cnn", Visitor()) == ref  # picked again: the same version
    assert page_reference(registry, models, "mlp", None) != ref
    assert registry.conversions == 2


def test_each_epoch_of_a_run_is_a_new_version_of_the_visitors_model(models: Models):
    registry, visitor = PageModels(), Visitor()
    key = visitor.adopt(own(1), "trained: epoch 1")
    first = page_reference(registry, models, key, visitor)
    assert visitor.adopt(own(2), "trained: epoch 2", replace=key) == key  # the run's entry, replaced
    second = page_reference(registry, models, key, visitor)
    assert json.loads(first)["hash"] != json.loads(second)["hash"]
    assert page_reference(registry, models, "yours", visitor) == second  # the newest, by its other name
    assert registry.conversions == 2
    assert registry.payload(json.loads(first)["hash"]) is not None  # an earlier epoch stays fetchable a while


def test_what_the_server_keeps_is_bounded_and_the_shipped_models_stay(models: Models):
    registry, visitor = PageModels(max_floats=300_000), Visitor()  # room for the shipped CNN and few more
    shipped = json.loads(page_reference(registry, models, "cnn", None))["hash"]
    for seed in range(12):
        key = visitor.adopt(own(seed, size=16), f"run {seed}")
        page_reference(registry, models, key, visitor)
    assert registry.floats <= 300_000
    assert registry.payload(shipped) is not None
    # A dropped model picked again is converted again, not named by a hash the server no longer has.
    oldest = visitor.models[0]
    ref = json.loads(page_reference(registry, models, oldest.key, visitor))
    assert registry.payload(ref["hash"]) is not None


def test_a_model_the_page_cannot_run_or_a_wrong_key_leaves_the_page_without_one(models: Models, monkeypatch):
    registry, visitor = PageModels(), Visitor()
    assert page_reference(registry, models, "yours", visitor) is None  # no model of their own yet
    assert page_reference(registry, models, "nonsense", visitor) is None
    key = visitor.adopt(own(0, kind="mlp", size=64), "loaded from a file")
    monkeypatch.setattr(webmodel, "MAX_PAGE_FLOATS", 1000)  # as if the MLP were too wide for the page
    assert page_reference(registry, models, key, visitor) is None
    assert len(registry) == 0


def test_the_component_sends_the_page_the_reading_constants(models: Models):
    with gr.Blocks():
        html = page_model_html(PageModels())
    assert html.props["constants"] is PAGE_READING
    for library in ("MnistNet", "MnistRead", "MnistVerdict", "MnistLive"):
        assert f"globalThis.{library} =" in html.head
    assert len(PAGE_READING["input_values"]) == 256 and PAGE_READING["max_digits"] > 1


@pytest.mark.parametrize("key", ["cnn", "mlp", "mlp-guide"])
def test_every_shipped_model_goes_to_the_page(models: Models, key: str):
    assert page_reference(PageModels(), models, key, None) is not None


@pytest.mark.parametrize("key", ["cnn", "mlp"])
def test_the_reference_carries_the_checkpoints_not_a_digit_rule(models: Models, key: str):
    registry = PageModels()
    ref = json.loads(page_reference(registry, models, key, None))
    rule = decline_threshold(models.pick(key, None).metadata)
    assert rule is not None and (ref["decline_below"], ref["decline_score"]) == (rule.below, rule.score)
    # The "residual" score's weight rides in the reference, its subspace with the weights (net.js).
    header = registry.payload(ref["hash"])["header"]
    if rule.score == "residual":
        assert ref["decline_weight"] == rule.subspace.weight
        assert header["residual"]["features"] == rule.subspace.features == header["features"]
        assert header["residual"]["rank"] == rule.subspace.rank
    else:
        assert ref["decline_weight"] is None and "residual" not in header
    assert json.loads(page_reference(registry, models, key, None)) == ref  # picked again: the same, rule and all
    assert registry.conversions == 1
    visitor = Visitor()
    own_key = visitor.adopt(own(0), "trained")  # no threshold in its metadata: it never declines
    ref = json.loads(page_reference(PageModels(), models, own_key, visitor))
    assert ref["decline_below"] is None and ref["decline_score"] is None and ref["decline_weight"] is None


@pytest.mark.parametrize("key", ["cnn", "mlp", "mlp-guide"])
def test_the_map_knows_the_page_model_by_the_hash_the_page_has(models: Models, key: str):
    """map.js places the page's readings only for the model whose hash the map names (ui/atlas.py)."""
    checkpoint = models.pick(key, None)
    rule = decline_threshold(checkpoint.metadata)
    ref = json.loads(page_reference(PageModels(), models, key, None))
    assert mapview.page_hash(checkpoint.model, rule.page_subspace if rule else None) == ref["hash"]


def _live(models: Models) -> ModelInPage:
    with gr.Blocks():
        return ModelInPage(PageModels(), models, page_model_html(PageModels()))


def test_a_handler_that_sets_the_picker_also_sends_the_page_that_model(models: Models):
    live, visitor = _live(models), Visitor()

    def run(n: int, visitor: Visitor):  # a training run's updates: a tick, a step, then an epoch
        yield None
        yield "step", gr.skip()
        for seed in range(n):
            key = visitor.adopt(own(seed), "trained", replace=visitor.latest.key if visitor.latest else None)
            yield "epoch", models.picker(visitor, key)

    outputs = list(live.follows(run, picker_at=1)(2, visitor))
    assert outputs[0] is None  # ui/runner.py's ticks pass through
    assert outputs[1][:2] == ("step", outputs[1][1]) and isinstance(outputs[1][2], type(gr.skip()))
    first, second = (json.loads(o[2])["hash"] for o in outputs[2:])
    assert first != second  # each epoch's model is a new version in the page
    assert second == json.loads(live.reference("yours", visitor))["hash"]

    def load(path: str, visitor: Visitor):  # a plain function: the loaded model is picked
        return "loaded", models.picker(visitor, "mlp")

    status, picker, ref = live.follows(load, picker_at=1)("x.safetensors", visitor=visitor)
    assert status == "loaded" and json.loads(ref)["kind"] == "mlp"


def test_the_server_reading_names_the_strokes_and_the_model_it_read(models: Models):
    registry = PageModels()
    handlers = DrawHandlers(models, page_models=registry)
    strokes = [[[60.5, 50, 0], [220, 50.25, 10], [120, 230, 20]]]
    value, reading = handlers.read(json.dumps(strokes), "cnn", None)
    assert reading is not None and json.loads(value)["drawn"] == drawn_signature(strokes)
    assert "model" not in json.loads(value)  # the page holds no copy of it yet: nothing to compare with
    ref = json.loads(page_reference(registry, models, "cnn", None))
    assert json.loads(handlers.read(json.dumps(strokes), "cnn", None)[0])["model"] == ref["hash"]
    empty = json.loads(handlers.read("[]", "cnn", None)[0])
    assert empty["verdict"] is None and empty["drawn"] == "0:0:0"  # the empty state, of an empty pad
    error = json.loads(handlers.read("[[[1, 2], [3]]]", "cnn", None)[0])
    assert error["error"] is True and "drawn" not in error  # strokes that are no strokes have no signature
    assert drawn_signature(strokes) != drawn_signature([[p[:2] for p in strokes[0]][::-1]])  # order counts
