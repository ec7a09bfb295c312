"""Refit a trained model's last layer so that digits get high energy and non-digits low: "not a digit".

The energy of a reading is the log-sum-exp of its ten logits (`mnist_demo.reject`): a digit the model
knows gets one large logit, a non-digit trained with Outlier Exposure gets ten small, even ones, whose
log-sum-exp sits near log(10) = 2.30. Training towards equal probabilities (train.py's `--outliers`)
only flattens the logits; it does not push them down. This step adds the squared-hinge energy loss of
Liu et al. (NeurIPS 2020) to the cross-entropy of the digits: a digit is pushed above DIGIT_MARGIN, a
non-digit below NONDIGIT_MARGIN. Only the last layer moves: the features, and so everything the map
and the page compute up to the classifier, stay as trained, and it takes a minute on one CPU core.

The data are the checkpoint's own: MNIST's training digits (no augmentation), the world-style digits and
the non-digits its config drew (`worldstyles.styled_digits`, `outliers.outlier_images`, same counts and
seed). Only `KEEP` of the change is kept (as train.py's --keep: most of the gain, less forgetting). The
numbers below were chosen on TUNE data only (scripts/issue15/head.py: TUNE-font digits and the TUNE
non-digits of testkit/tune_nondigits.py) and MNIST test: with them the shipped CNN's TUNE non-digits
declined (by energy, 1% of TUNE digits declined) went from 91% to 94% at the same 99.62% on MNIST;
keeping all of the change cost 0.03 points of MNIST.

    python -m mnist_demo.energy_head weights/cnn.safetensors --out weights/cnn.safetensors
    python -m mnist_demo.reject weights/cnn.safetensors --score energy      # then calibrate the rule again
"""

from __future__ import annotations

import argparse
import copy
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from mnist_demo import worldstyles
from mnist_demo.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mnist_demo.data import MNISTNotFoundError, Split, load_mnist
from mnist_demo.features import classifier, digit_features
from mnist_demo.metrics import accuracy
from mnist_demo.outliers import outlier_images
from mnist_demo.train import blend

# The margins, in units of log-sum-exp. 2.4 sits just above the floor of ten equal logits at zero
# (log 10 = 2.30), where Outlier Exposure leaves most non-digits; 3.5 is about the tenth percentile of
# MNIST's training digits under the shipped CNN (their median is 4.2, the 1% calibration point ~2.9).
DIGIT_MARGIN = 3.5
NONDIGIT_MARGIN = 2.4
ENERGY_WEIGHT = 1.0  # the hinge losses' weight beside the digits' cross-entropy
EPOCHS = 2  # passes over the digits
LEARNING_RATE = 1e-3  # Adam
BATCH = 256  # digits per step
NONDIGITS_PER_BATCH = 128  # non-digits per step, drawn with replacement from the pool
KEEP = 0.5  # share of the change kept; 0.4-0.7 all gave 99.62% on MNIST and 93.5-94.3% of TUNE non-digits
SEED = 0


def energy_loss(digit_logits: torch.Tensor, other_logits: torch.Tensor) -> torch.Tensor:
    """Squared hinges: digits' log-sum-exp below DIGIT_MARGIN, non-digits' above NONDIGIT_MARGIN."""
    low = F.relu(DIGIT_MARGIN - digit_logits.logsumexp(dim=1)).pow(2).mean()
    high = F.relu(other_logits.logsumexp(dim=1) - NONDIGIT_MARGIN).pow(2).mean()
    return low + high


def refit(
    head: nn.Linear,
    digits: torch.Tensor,
    labels: torch.Tensor,
    others: torch.Tensor,
    label_smoothing: float = 0.0,
    epochs: int = EPOCHS,
    seed: int = SEED,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The last layer's new (weight, bias), trained from `head`'s on features: digits (N, F) with their
    labels, non-digits (M, F). `head` itself is left as it was."""
    generator = torch.Generator().manual_seed(seed)
    weight = head.weight.detach().float().clone().requires_grad_()
    bias = head.bias.detach().float().clone().requires_grad_()
    optimizer = torch.optim.Adam([weight, bias], lr=LEARNING_RATE)
    for _ in range(epochs):
        order = torch.randperm(len(digits), generator=generator)
        for start in range(0, len(order), BATCH):
            rows = order[start : start + BATCH]
            other = others[torch.randint(len(others), (NONDIGITS_PER_BATCH,), generator=generator)]
            digit_logits = F.linear(digits[rows], weight, bias)
            other_logits = F.linear(other, weight, bias)
            loss = F.cross_entropy(digit_logits, labels[rows], label_smoothing=label_smoothing)
            loss = loss + ENERGY_WEIGHT * energy_loss(digit_logits, other_logits)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return weight.detach(), bias.detach()


def keep_share(head: nn.Linear, weight: torch.Tensor, bias: torch.Tensor, share: float = KEEP) -> None:
    """Move `head` to its old weights plus `share` of the change to (weight, bias), in place (train.blend)."""
    before = copy.deepcopy(head)
    with torch.no_grad():
        head.weight.copy_(weight)
        head.bias.copy_(bias)
    blend(head, before, share)


def check_config(config: dict) -> None:
    """ValueError unless the checkpoint's config says it trained on non-digits (what the refit needs)."""
    if int(config.get("outliers", 0)) <= 0:
        raise ValueError("the checkpoint was not trained with non-digits (config 'outliers'): nothing to refit on")


def training_sets(config: dict, mnist: Split) -> tuple[Split, torch.Tensor]:
    """The digits (MNIST's and the world-style ones) and the non-digits a checkpoint's config trained on."""
    check_config(config)
    seed, styled, outliers = int(config.get("seed", 0)), int(config.get("styled", 0)), int(config["outliers"])
    digits = mnist
    if styled > 0:
        extra = worldstyles.styled_digits(styled, seed, mnist)
        digits = Split(torch.cat([mnist.images, extra.images]), torch.cat([mnist.labels, extra.labels]))
    return digits, outlier_images(outliers, seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mnist_demo.energy_head", description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="a .safetensors checkpoint trained with --outliers")
    parser.add_argument("--out", required=True, help="where to write the refitted checkpoint (may be the same file)")
    args = parser.parse_args(argv)
    try:
        checkpoint = load_checkpoint(args.weights)
        config = checkpoint.metadata.get("config") or {}
        check_config(config)
        train, test = load_mnist(train=True), load_mnist(train=False)
        digits, others = training_sets(config, train)
    except (CheckpointError, MNISTNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    model = checkpoint.model.eval()
    start = time.perf_counter()
    before = accuracy(model, test)
    head = classifier(model)
    weight, bias = refit(
        head,
        digit_features(model, digits.images),
        digits.labels,
        digit_features(model, others),
        label_smoothing=float(config.get("label_smoothing", 0.0)),
    )
    keep_share(head, weight, bias)
    after = accuracy(model, test)
    seconds = time.perf_counter() - start
    print(f"MNIST test {100 * before:.2f}% -> {100 * after:.2f}% ({seconds:.0f} s)")
    refitted = {
        "digit_margin": DIGIT_MARGIN,
        "nondigit_margin": NONDIGIT_MARGIN,
        "weight": ENERGY_WEIGHT,
        "epochs": EPOCHS,
        "lr": LEARNING_RATE,
        "keep": KEEP,
        "test_accuracy_before": before,
        "seconds": round(seconds, 1),
        "command": f"python -m mnist_demo.energy_head {args.weights} --out {args.out}",
    }
    # The old "not a digit" rule no longer fits the new logits: dropped until mnist_demo.reject sets one.
    meta = {
        k: v
        for k, v in checkpoint.metadata.items()
        if k not in ("decline_below", "decline_score", "decline_calibration", "decline_subspace")
    }
    save_checkpoint(args.out, model, **{**meta, "test_accuracy": after, "energy_head": refitted})
    print(f"wrote {args.out}; now: python -m mnist_demo.reject {args.out} --score energy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
