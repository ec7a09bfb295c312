"""Saying "that does not look like a digit": the score, the threshold a checkpoint carries, its calibration.

The score is the top softmax probability of the model's ten logits (Hendrycks and Gimpel, 2017), the
number the page already shows, so the page can take the same decision with no extra parameters. A model
trained with Outlier Exposure (`--outliers`, `mnist_demo/outliers.py`) spreads its probability over all
ten digits for non-digits, so one threshold separates them. The threshold is calibrated on digits no
choice was fitted to: drawings of every digit in the TUNE group of handwriting fonts
(`mnist_demo/handfonts.py`), read as the app reads a canvas, and it is set so that `DIGITS_DECLINED` of
them fall below it. It is stored in the checkpoint's metadata as `decline_below`.

    python -m mnist_demo.reject weights/cnn.safetensors [more.safetensors ...]   # calibrate, write into each
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

import numpy as np
import torch
from torch import nn

from mnist_demo import handfonts
from mnist_demo.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mnist_demo.data import NUM_CLASSES, Split, normalize
from mnist_demo.preprocess import sketch_to_tensor

DECLINE_KEY = "decline_below"  # checkpoint metadata: decline a digit whose top probability is below this
# Share of the calibration digits declined. The target is at most 2% of real digits; 1% on the TUNE fonts
# leaves room for drawings less tidy than theirs.
DIGITS_DECLINED = 0.01
DRAWINGS_PER_DIGIT = 10  # per font: 11 fonts x 10 digits x 10 = 1,100 calibration drawings
SEED = 1  # the calibration drawings' seed (the fonts' other seeds serve other measurements)


def top_probability(logits: torch.Tensor) -> torch.Tensor:
    """(N, 10) logits -> (N,) the largest softmax probability of each row."""
    return logits.float().softmax(dim=1).amax(dim=1)


def decline_threshold(metadata: dict[str, Any]) -> float | None:
    """The checkpoint's threshold, or None when it has none (or one that makes no sense)."""
    value = metadata.get(DECLINE_KEY)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 1 / NUM_CLASSES <= value < 1
    return float(value) if ok else None


def font_digits(fonts: tuple[str, ...], per_digit: int, seed: int) -> Split:
    """Drawings of each digit in each font, as the reader sees them: (N, 28, 28) uint8 and labels."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for name in fonts:
        for digit in range(NUM_CLASSES):
            for _ in range(per_digit):
                sketch = sketch_to_tensor(handfonts.draw(str(digit), name, rng))
                if sketch is not None:
                    images.append(sketch.image)
                    labels.append(digit)
    return Split(torch.from_numpy(np.stack(images)), torch.tensor(labels))


@torch.no_grad()
def top_probabilities(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """(N, 28, 28) uint8 -> (N,) top probabilities, in eval mode."""
    model.eval()
    return torch.cat([top_probability(model(normalize(x))) for x in images.split(256)])


def calibrate(model: nn.Module, digits: Split, share: float = DIGITS_DECLINED) -> float:
    """The threshold below which `share` of `digits` fall."""
    scores = top_probabilities(model, digits.images).double()
    return float(torch.quantile(scores, share))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mnist_demo.reject", description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="+", help=".safetensors checkpoints; each one's metadata gains its threshold")
    parser.add_argument("--share", type=float, default=DIGITS_DECLINED, help="share of calibration digits declined")
    args = parser.parse_args(argv)
    if not 0 < args.share < 0.5 or math.isnan(args.share):
        print("error: --share must lie between 0 and 0.5", file=sys.stderr)
        return 2
    try:
        checkpoints = [load_checkpoint(path) for path in args.weights]
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    digits = font_digits(handfonts.TUNE, DRAWINGS_PER_DIGIT, SEED)  # drawn once for every checkpoint
    for path, checkpoint in zip(args.weights, checkpoints, strict=True):
        threshold = calibrate(checkpoint.model, digits, args.share)
        meta = {**checkpoint.metadata, DECLINE_KEY: round(threshold, 6)}
        meta["decline_calibration"] = {
            "digits": len(digits),
            "fonts": "TUNE",
            "share_declined": args.share,
            "command": f"python -m mnist_demo.reject {path}"
            + (f" --share {args.share}" if argv and "--share" in argv else ""),
        }
        save_checkpoint(path, checkpoint.model, **meta)
        print(f"{path}: declines below a top probability of {threshold:.4f} ({args.share:.0%} of {len(digits)} digits)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
