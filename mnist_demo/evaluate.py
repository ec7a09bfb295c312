"""Evaluation: test accuracy and confusion matrix of a model, on MNIST or on a folder of drawings.

python -m mnist_demo.evaluate weights/cnn.safetensors            # MNIST test set
python -m mnist_demo.evaluate weights/cnn.safetensors --json     # machine-readable
python -m mnist_demo.evaluate weights/cnn.safetensors --drawings tests/drawings   # DIR/0 .. DIR/9, DIR/none
python -m mnist_demo.evaluate weights/cnn.safetensors --strokes tests/drawings/strokes.ndjson
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from torch import nn

from mnist_demo.checkpoint import CheckpointError, load_checkpoint
from mnist_demo.data import NUM_CLASSES, MNISTNotFoundError, load_mnist
from mnist_demo.drawings import evaluate_drawings, evaluate_strokes, format_drawings_report
from mnist_demo.metrics import confusion_matrix, format_confusion, predict_split
from mnist_demo.models import COMMAND_LINE_LARGEST
from mnist_demo.reject import decline_threshold


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
    parser = argparse.ArgumentParser(prog="python -m mnist_demo.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="a .safetensors checkpoint written by mnist_demo.train")
    on = parser.add_mutually_exclusive_group()
    on.add_argument(
        "--drawings",
        metavar="DIR",
        help="evaluate on DIR/0 .. DIR/9 image files instead of MNIST; DIR/none holds non-digits",
    )
    on.add_argument(
        "--strokes",
        metavar="FILE",
        help='evaluate on drawings as pen strokes, one JSON line each (Quick, Draw!\'s form; label "none": no digit)',
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = parser.parse_args(argv)

    try:
        checkpoint = load_checkpoint(args.weights, largest=COMMAND_LINE_LARGEST)
        decline = decline_threshold(checkpoint.metadata)
        if args.drawings:
            report = evaluate_drawings(checkpoint.model, args.drawings, decline)
            text = format_drawings_report(report)
        elif args.strokes:
            report = evaluate_strokes(checkpoint.model, args.strokes, decline)
            text = format_drawings_report(report)
        else:
            report = mnist_report(checkpoint.model)
            text = (
                f"MNIST test accuracy: {report['accuracy'] * 100:.2f}% ({report['n']} images)\n\n"
                + format_confusion(report["confusion"])
            )
    except (CheckpointError, MNISTNotFoundError, FileNotFoundError, NotADirectoryError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    report["weights"] = args.weights
    print(json.dumps(report) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
