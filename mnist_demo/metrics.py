"""Measuring a model on a split of images: predictions, accuracy and the confusion matrix.

Shared by training (accuracy after each epoch), evaluation on MNIST and on drawings, and the app.

    python -m pytest tests/test_train.py tests/test_drawings.py
"""

from __future__ import annotations

import torch
from torch import nn

from mnist_demo.data import NUM_CLASSES, Split, normalize

# Images per forward pass when evaluating: big enough to keep the CPU busy, small enough that the CNN's
# first activations (B x 32 x 28 x 28 floats: 25 MB at 256) do not spike a training session's memory.
EVAL_BATCH = 256


@torch.no_grad()
def logits_of(model: nn.Module, images: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 images (N, 28, 28) -> the model's float32 logits (N, 10) on the CPU, in eval mode (its mode
    restored after), the images normalised as Sketch.tensor is."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(images), EVAL_BATCH):
        x = normalize(images[start : start + EVAL_BATCH].to(device))  # (B, 1, 28, 28)
        out.append(model(x).float().cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, NUM_CLASSES)


def predict_split(model: nn.Module, split: Split, device: torch.device | str = "cpu") -> torch.Tensor:
    """Predicted class of every image in `split`, as an int64 tensor (N,) on the CPU."""
    return logits_of(model, split.images, device).argmax(dim=1)


def confusion_matrix(labels: torch.Tensor, preds: torch.Tensor) -> torch.Tensor:
    """(10, 10) counts; rows are the true digit, columns the prediction."""
    flat = labels.cpu() * NUM_CLASSES + preds.cpu()
    return torch.bincount(flat, minlength=NUM_CLASSES * NUM_CLASSES).reshape(NUM_CLASSES, NUM_CLASSES)


def accuracy(model: nn.Module, split: Split, device: torch.device | str = "cpu") -> float:
    """Fraction of `split` that `model` classifies correctly."""
    return (predict_split(model, split, device) == split.labels.cpu()).float().mean().item()


def format_confusion(confusion: torch.Tensor | list[list[int]]) -> str:
    """The confusion matrix as a text table, true digit per row."""
    rows = torch.as_tensor(confusion).tolist()
    width = max(5, len(str(max(max(r) for r in rows))) + 1)
    head = "true\\pred" + "".join(f"{d:>{width}}" for d in range(NUM_CLASSES))
    return "\n".join([head] + [f"{t:>9}" + "".join(f"{c:>{width}}" for c in row) for t, row in enumerate(rows)])


def pair_rows(
    labels: torch.Tensor, preds: torch.Tensor, true: int, predicted: int, limit: int | None = None
) -> torch.Tensor:
    """Indices, in order, of the examples of digit `true` that were read as `predicted` (one confusion cell).

    At most `limit` of them; their number without a limit is that cell's count in `confusion_matrix`.
    """
    if not (0 <= true < NUM_CLASSES and 0 <= predicted < NUM_CLASSES):
        raise ValueError(f"digits are 0 to {NUM_CLASSES - 1}, got true={true}, predicted={predicted}")
    rows = torch.nonzero((labels.cpu() == true) & (preds.cpu() == predicted)).flatten()
    return rows if limit is None else rows[:limit]
