"""Evaluation: test accuracy and confusion matrix of a model, on MNIST or on a folder of drawings.

python -m mnist_demo.evaluate weights/cnn.safetensors            # MNIST test set
python -m mnist_demo.evaluate weights/cnn.safetensors --json     # machine-readable
python -m mnist_demo.evaluate weights/cnn.safetensors --drawings tests/drawings
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from torch import nn

from mnist_demo.data import NUM_CLASSES, Split, load_mnist, normalize

# Images per forward pass when evaluating: big enough to keep the CPU busy, small enough that the CNN's
# first activations (B x 32 x 28 x 28 floats: 25 MB at 256) do not spike a training session's memory.
EVAL_BATCH = 256


@torch.no_grad()
def predict_split(model: nn.Module, split: Split, device: torch.device | str = "cpu") -> torch.Tensor:
    """Predicted class of every image in `split`, as an int64 tensor (N,) on the CPU."""
    was_training = model.training
    model.eval()
    preds = []
    for start in range(0, len(split), EVAL_BATCH):
        x = normalize(split.images[start : start + EVAL_BATCH].to(device))  # (B, 1, 28, 28)
        preds.append(model(x).argmax(dim=1).cpu())
    model.train(was_training)
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


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


def mnist_report(model: nn.Module, device: torch.device | str = "cpu") -> dict:
    """Accuracy, per-digit accuracy and confusion matrix on the MNIST test set, JSON-able."""
    test = load_mnist(train=False)
    preds = predict_split(model, test, device)
    confusion = confusion_matrix(test.labels, preds)
    counts = confusion.sum(dim=1)
    per_class = {
        str(d): {"n": int(counts[d]), "accuracy": confusion[d, d].item() / max(1, int(counts[d]))}
        for d in range(NUM_CLASSES)
    }
    return {
        "dataset": "mnist-test",
        "n": len(test),
        "accuracy": confusion.trace().item() / len(test),
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }


def main(argv: list[str] | None = None) -> int:
    from mnist_demo.checkpoint import CheckpointError, load_checkpoint
    from mnist_demo.data import MNISTNotFoundError

    parser = argparse.ArgumentParser(prog="python -m mnist_demo.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="a .safetensors checkpoint written by mnist_demo.train")
    parser.add_argument("--drawings", metavar="DIR", help="evaluate on DIR/0 .. DIR/9 image files instead of MNIST")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = parser.parse_args(argv)

    try:
        checkpoint = load_checkpoint(args.weights)
        if args.drawings:
            from mnist_demo.drawings import evaluate_drawings, format_drawings_report

            report = evaluate_drawings(checkpoint.model, args.drawings)
            text = format_drawings_report(report)
        else:
            report = mnist_report(checkpoint.model)
            text = (
                f"MNIST test accuracy: {report['accuracy'] * 100:.2f}% ({report['n']} images)\n\n"
                + format_confusion(report["confusion"])
            )
    except (CheckpointError, MNISTNotFoundError, FileNotFoundError, NotADirectoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    report["weights"] = args.weights
    print(json.dumps(report) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
