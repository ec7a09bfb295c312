"""The guide's MLP and the CNN: shapes, sizes, and refusal of unknown names."""

import pytest
import torch

from mnist_demo.models import GUIDE_HIDDEN, GuideMLP, SmallCNN, build_model


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_models_return_logits_per_class(name):
    model = build_model(name).eval()
    logits = model(torch.randn(5, 1, 28, 28))
    assert logits.shape == (5, 10)
    assert not torch.allclose(logits.softmax(1).sum(1), logits.sum(1))  # raw scores, not probabilities


def test_guide_mlp_is_the_guide_network_fixed():
    model = build_model("mlp")
    assert isinstance(model, GuideMLP) and model.fc1.out_features == GUIDE_HIDDEN == 28
    assert model.fc1.in_features == 28 * 28  # the guide's Linear(28, 28) saw one row at a time
    assert sum(p.numel() for p in model.parameters()) == 784 * 28 + 28 + 28 * 10 + 10


def test_sizes_are_configurable():
    assert build_model("mlp", 128).fc1.out_features == 128
    cnn = build_model("cnn", 8)
    assert isinstance(cnn, SmallCNN) and cnn(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("name, size", [("resnet", None), ("mlp", 0), ("mlp", -3), ("cnn", 10**6), ("mlp", 2.5),
                                        ("cnn", True)])
def test_bad_names_and_sizes_are_refused(name, size):
    with pytest.raises(ValueError):
        build_model(name, size)
