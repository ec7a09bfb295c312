"""A visitor's session: models enter through `adopt`, in order, bounded, each with what made it."""

from __future__ import annotations

import pickle

from mnist_demo.checkpoint import Checkpoint
from mnist_demo.models import build_model
from mnist_demo.session import LATEST, MAX_OWN_MODELS, Visitor, is_own


def checkpoint(name: str = "mlp") -> Checkpoint:
    return Checkpoint(build_model(name, 4), {"model": name})


def test_adopt_keeps_models_in_order_with_stable_keys_and_drops_the_oldest():
    visitor = Visitor()
    assert visitor.latest is None and visitor.model(LATEST) is None
    keys = [visitor.adopt(checkpoint(), f"run {i}") for i in range(MAX_OWN_MODELS + 1)]
    assert keys == [f"yours-{i}" for i in range(1, MAX_OWN_MODELS + 2)]  # a number is never reused
    assert [own.origin for own in visitor.models] == [f"run {i}" for i in range(1, MAX_OWN_MODELS + 1)]
    assert visitor.model(keys[0]) is None and visitor.model(keys[-1]) is visitor.latest is visitor.model(LATEST)
    assert visitor.latest.number == MAX_OWN_MODELS + 1


def test_replace_updates_one_entry_in_place_or_adds_when_it_is_gone():
    visitor = Visitor()
    first = visitor.adopt(checkpoint(), "epoch 1")
    other = visitor.adopt(checkpoint("cnn"), "loaded")
    new = checkpoint()
    assert visitor.adopt(new, "epoch 2", replace=first) == first
    assert [own.key for own in visitor.models] == [first, other]  # its place and key are kept
    assert visitor.model(first).checkpoint is new and visitor.model(first).origin == "epoch 2"
    assert visitor.adopt(checkpoint(), "late", replace="yours-99") == "yours-3"  # dropped meanwhile: a new model


def test_keys_and_pickling():
    assert is_own("yours") and is_own("yours-2") and not is_own("cnn") and not is_own(None)
    visitor = Visitor()
    visitor.adopt(checkpoint(), "trained")
    assert pickle.loads(pickle.dumps(visitor)).latest.origin == "trained"  # what gr.State and ZeroGPU need
