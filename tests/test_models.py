"""The guide's MLP and the CNN: shapes, sizes, and refusal of unknown names."""

import pytest
import torch

from mnist_demo.models import GUIDE_HIDDEN, MAX_CROP, GuideMLP, SmallCNN, build_model, expected_layout


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_models_return_logits_per_class(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.randn(5, 1, 28, 28)
    logits = model(x)
    assert logits.shape == (5, 10)
    # The classifier's own output, nothing after it: softmax, log_softmax or any rescaling would differ.
    if name == "mlp":
        last = model.fc2(torch.relu(model.fc1(model.flatten(x))))
    else:
        last = model.classifier(model.features(x).flatten(1))
    assert torch.equal(logits, last)
    # Log-probabilities would each have a log-sum-exp of 0; probabilities would sum to 1.
    assert not torch.allclose(torch.logsumexp(logits, 1), torch.zeros(5), atol=1e-3)
    assert not torch.allclose(logits.sum(1), torch.ones(5), atol=1e-3)


def test_guide_mlp_is_the_guide_network_fixed():
    model = build_model("mlp")
    assert isinstance(model, GuideMLP) and model.fc1.out_features == GUIDE_HIDDEN == 28
    assert model.fc1.in_features == 28 * 28  # the guide's Linear(28, 28) saw one row at a time
    assert sum(p.numel() for p in model.parameters()) == 784 * 28 + 28 + 28 * 10 + 10


def test_sizes_are_configurable():
    assert build_model("mlp", 128).fc1.out_features == 128
    cnn = build_model("cnn", 8)
    assert isinstance(cnn, SmallCNN) and cnn(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_a_cropping_cnn_sees_only_the_centre():
    torch.manual_seed(0)
    cnn = build_model("cnn", 8, crop=2).eval()
    assert cnn.classifier.in_features == build_model("cnn", 8).classifier.in_features  # 24 -> 3 as 28 -> 3
    x = torch.randn(3, 1, 28, 28)
    border = x.clone()
    border[:, :, :2], border[:, :, -2:], border[:, :, :, :2], border[:, :, :, -2:] = 9.0, 9.0, 9.0, 9.0
    assert torch.equal(cnn(x), cnn(border))  # the outer two pixels never reach the network
    inner = x.clone()
    inner[:, :, 2, 2] += 9.0
    assert not torch.equal(cnn(x), cnn(inner))  # the first pixel inside them does
    # The largest crop still classifies (20 -> 10 -> 5 -> 2 pixels).
    assert build_model("cnn", 4, crop=MAX_CROP)(x).shape == (3, 10)


@pytest.mark.parametrize(
    "name, size, crop",
    [
        ("resnet", None, 0),
        ("mlp", 0, 0),
        ("mlp", -3, 0),
        ("cnn", 10**6, 0),
        ("mlp", 2.5, 0),
        ("cnn", True, 0),
        ("cnn", 8, MAX_CROP + 1),
        ("cnn", 8, -1),
        ("cnn", 8, 1.5),
        ("mlp", 28, 2),
    ],
)
def test_bad_names_sizes_and_crops_are_refused(name, size, crop):
    with pytest.raises(ValueError):
        build_model(name, size, crop)


@pytest.mark.mnist
def test_mnist_ink_lies_inside_the_crop(mnist_train):
    """What makes `crop=2` nearly free: MNIST's outer two pixels hold 0.23% of its ink (models.MAX_CROP)."""
    ink = mnist_train.images.float()
    outside = 1 - ink[:, 2:-2, 2:-2].sum() / ink.sum()
    assert 0.001 < outside < 0.003


@pytest.mark.parametrize(
    "name, size, crop", [("mlp", 1, 0), ("mlp", 28, 0), ("cnn", 3, 0), ("cnn", 16, 2), ("cnn", 5, 4)]
)
def test_expected_layout_is_the_models_state_dict(name, size, crop):
    """The layout a checkpoint's header is checked against, computed without a model, is the model's own."""
    dtypes = {torch.float32: "F32", torch.int64: "I64"}
    model = build_model(name, size, crop)
    assert expected_layout(name, size, crop) == {
        k: (dtypes[v.dtype], list(v.shape)) for k, v in model.state_dict().items()
    }
