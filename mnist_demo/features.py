"""A network's features: what it computes just before its classifier, read without changing its forward.

The MLP's hidden ReLU activations; the CNN's last block, flattened (after its crop, if any). Computed by
running the model's own layers up to its last one, so `classifier(model)(features(model, x))` is
`model(x)` (tests/test_atlas.py checks it for every kind of model).

    python -m pytest tests/test_atlas.py -k features
"""

from __future__ import annotations

import torch
from torch import nn

from mnist_demo.data import normalize
from mnist_demo.models import GuideMLP, SmallCNN

FEATURE_BATCH = 256  # digits per forward pass: bounds the CNN's first activations (as metrics.EVAL_BATCH)


def classifier(model: nn.Module) -> nn.Linear:
    """The last layer of `model`, whose input the map shows."""
    if isinstance(model, GuideMLP):
        return model.fc2
    if isinstance(model, SmallCNN):
        return model.classifier
    raise TypeError(f"not a model of this package: {type(model).__name__}")


def _features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, 1, 28, 28) normalised -> (B, F): the model's forward up to its classifier."""
    if isinstance(model, GuideMLP):
        return torch.relu(model.fc1(model.flatten(x)))
    if isinstance(model, SmallCNN):
        if model.crop:
            x = x[:, :, model.crop : -model.crop, model.crop : -model.crop]
        return model.features(x).flatten(1)
    raise TypeError(f"not a model of this package: {type(model).__name__}")


def logits_and_features(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`model`'s logits (B, 10) and the classifier's input (B, F) for normalised images (B, 1, 28, 28), in
    one pass, in the model's current mode, dtype and device, as `model(x)` computes them (an inference
    copy reading a drawing, `reject.read_for`; the page's torch reference, `webmodel`)."""
    features = _features(model, x)
    return classifier(model)(features), features


def digit_logits_and_features(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 digits (N, 28, 28) -> their logits (N, 10) and features (N, F), in eval mode, batched."""
    found = digit_features(model, images)
    with torch.no_grad():
        return classifier(model)(found), found


@torch.no_grad()
def features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The classifier's input for normalised images (B, 1, 28, 28), as float32 (B, F) on the CPU.

    Runs in eval mode (batch norm uses its running statistics, as for any reading) and leaves the
    model's mode as it found it, so it can be called between two epochs of training.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        parts = [
            _features(model, x[i : i + FEATURE_BATCH].to(device)).float().cpu() for i in range(0, len(x), FEATURE_BATCH)
        ]
    finally:
        model.train(was_training)
    return torch.cat(parts) if parts else torch.empty(0, classifier(model).in_features)


def digit_features(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """uint8 digits (N, 28, 28) -> their features (N, F)."""
    return features(model, normalize(images))


@torch.no_grad()
def features_and_predictions(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 digits (N, 28, 28) -> their features (N, F) float32 and predicted digits (N,) int64, on the CPU.

    One forward pass gives both, since the classifier reads the features: a training run maps its
    digits and measures its accuracy on them at once. Eval mode, the model's mode restored.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    head = classifier(model)
    feats, preds = [], []
    try:
        for i in range(0, len(images), FEATURE_BATCH):
            f = _features(model, normalize(images[i : i + FEATURE_BATCH].to(device)))  # (B, F)
            preds.append(head(f).argmax(1).cpu())
            feats.append(f.float().cpu())
    finally:
        model.train(was_training)
    if not feats:
        return torch.empty(0, head.in_features), torch.empty(0, dtype=torch.long)
    return torch.cat(feats), torch.cat(preds)
