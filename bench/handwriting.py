"""Real handwriting and "not a digit", on drawings no choice was made on, against today's shipped CNN.

Digits: every digit in the 11 HELD_OUT handwriting fonts (`mnist_demo/handfonts.py`: each font one
person's hand), each drawing warped, slanted and sized anew, and the 34 mouse drawings of tests/drawings;
each is read as the app reads a canvas (`split_digits`, then the network), and counts as right when the
reading is that digit. Non-digits: letters in the HELD_OUT fonts, doodles and crossings-out from
`testkit/nondigits.py` (not the training generator). A drawing is declined when some mark on it falls
below its model's "not a digit" rule (`decline_below` on its `decline_score`, `mnist_demo/reject.py`); a
canvas whose ink is refused outright (a blob, nothing left) counts as declined too, since the app reads
no digit from it. The baseline is bench/baseline/cnn.safetensors, today's shipped CNN, given a rule on
the same score calibrated the same way (`reject.calibrate` on the TUNE fonts) so that its declines are
compared fairly (for the residual score, with a subspace fitted for it as reject.py fits one); the
non-digits row's note also gives the shipped CNN's declines by its other scores (top probability,
energy), calibrated alike, to show what the score adds.

    python -m bench --only handwriting [--quick]
"""

from __future__ import annotations

import numpy as np
import torch

from bench.report import Result
from mnist_demo import handfonts
from mnist_demo.checkpoint import Checkpoint, load_checkpoint
from mnist_demo.data import load_mnist
from mnist_demo.drawings import evaluate_drawings
from mnist_demo.inference import MAX_DIGITS, prepare, read_drawing
from mnist_demo.metrics import accuracy
from mnist_demo.reject import (
    DRAWINGS_PER_DIGIT,
    RESIDUAL,
    SEED,
    Decline,
    calibrate,
    decline_threshold,
    fit_subspace,
    font_digits,
    read_for,
)
from mnist_demo.segment import split_digits
from testkit.nondigits import nondigits
from testkit.server import ROOT
from testkit.timing import interleaved, one_torch_thread

NAME = "handwriting"
PER_DIGIT = {True: 1, False: 6}  # drawings of each digit in each held-out font
NONDIGITS = {True: 100, False: 600}
CALIBRATION_PER_DIGIT = {True: 2, False: DRAWINGS_PER_DIGIT}  # today's CNN's threshold, as reject.py sets one
FIT_DIGITS = {True: 5_000, False: 60_000}  # MNIST training digits its residual subspace is fitted on
TIMING_CALLS = {True: 30, False: 200}
DIGITS_SEED, NONDIGITS_SEED = 15, 15  # the benchmark's own seeds (calibration uses reject.SEED on other fonts)
TARGET_ERROR_RATIO = 2 / 3  # at least a third fewer errors than today's CNN
TARGET_MNIST = 0.996
TARGET_DECLINED_NONDIGITS = 0.90
TARGET_DECLINED_DIGITS = 0.02
TARGET_TIME_RATIO = 2.0


def readings(model: torch.nn.Module, pieces: list[torch.Tensor | None], rule: Decline | None) -> list[tuple[str, bool]]:
    """(text, declined) for each canvas's pieces, as `read_drawing` reads them; no pieces: ('', True)."""
    out = []
    with torch.inference_mode():
        for x in pieces:
            if x is None:
                out.append(("", True))
                continue
            logits, features = read_for(model, x, rule)
            declined = rule is not None and bool(rule.declines(logits, features).any())
            out.append(("".join(str(int(d)) for d in logits.argmax(dim=1)), declined))
    return out


def _pieces(canvases: list[np.ndarray]) -> list[torch.Tensor | None]:
    """Each canvas's digits as the app splits them: (D, 1, 28, 28), or None when nothing is read."""
    out = []
    for canvas in canvases:
        sketches = split_digits(canvas, limit=MAX_DIGITS)
        out.append(torch.cat([s.tensor for s in sketches]) if sketches else None)
    return out


def _checkpoints(quick: bool) -> tuple[Checkpoint, Checkpoint, Decline, dict[str, Decline]]:
    """(shipped CNN, today's CNN, today's CNN's rule, the shipped CNN's rules on the other logit scores (top
    probability, energy), all calibrated as the shipped one's was)."""
    new, old = (load_checkpoint(ROOT / folder / "cnn.safetensors") for folder in ("weights", "bench/baseline"))
    prepare(new.model), prepare(old.model)
    rule = decline_threshold(new.metadata)
    score = rule.score if rule is not None else "probability"
    tune = font_digits(handfonts.TUNE, CALIBRATION_PER_DIGIT[quick], SEED)
    # The residual score's subspace, fitted for today's CNN as reject.py fits one (MNIST's training digits)
    subspace = (
        fit_subspace(old.model, load_mnist(train=True).images[: FIT_DIGITS[quick]]) if score == RESIDUAL else None
    )
    return (
        new,
        old,
        calibrate(old.model, tune, score=score, subspace=subspace),
        {other: calibrate(new.model, tune, score=other) for other in ("probability", "energy") if other != score},
    )


def run(quick: bool) -> list[Result]:
    """The rows: errors on held-out handwriting, MNIST, declines of non-digits and of digits, reading time."""
    rng = np.random.default_rng(DIGITS_SEED)
    digits = [d for _ in handfonts.HELD_OUT for d in range(10) for _ in range(PER_DIGIT[quick])]
    fonts = [f for f in handfonts.HELD_OUT for _ in range(10 * PER_DIGIT[quick])]
    canvases = [handfonts.draw(str(d), f, rng) for d, f in zip(digits, fonts, strict=True)]
    others = nondigits(NONDIGITS[quick], NONDIGITS_SEED)
    with one_torch_thread():
        new, old, old_threshold, others_rules = _checkpoints(quick)
        threshold = decline_threshold(new.metadata)
        pieces, other_pieces = _pieces(canvases), _pieces([c for _, c in others])
        read = {"new": readings(new.model, pieces, threshold), "old": readings(old.model, pieces, old_threshold)}
        rejected = {
            "new": readings(new.model, other_pieces, threshold),
            "old": readings(old.model, other_pieces, old_threshold),
            **{score: readings(new.model, other_pieces, r) for score, r in others_rules.items()},
        }
        digits_by = {
            score: np.mean([x for _, x in readings(new.model, pieces, r)]) for score, r in others_rules.items()
        }
        errors = {k: np.mean([text != str(d) for (text, _), d in zip(r, digits, strict=True)]) for k, r in read.items()}
        declined = {k: np.mean([x for _, x in r]) for k, r in read.items()}
        refused = {k: np.mean([x for _, x in r]) for k, r in rejected.items()}
        mouse = {
            k: evaluate_drawings(c.model, ROOT / "tests" / "drawings", t)
            for k, c, t in (("new", new, threshold), ("old", old, old_threshold))
        }
        mnist = accuracy(new.model, load_mnist(train=False))
        sample = canvases[:: max(1, len(canvases) // 20)]
        times = interleaved(
            {
                "new": lambda i: read_drawing(new.model, sample[i % len(sample)], threshold),
                "old": lambda i: read_drawing(old.model, sample[i % len(sample)], old_threshold),
            },
            TIMING_CALLS[quick],
        )
    kinds = sorted({k for k, _ in others})
    by_kind = ", ".join(
        f"{k} {np.mean([x for (kk, _), (_, x) in zip(others, rejected['new'], strict=True) if kk == k]):.0%}"
        for k in kinds
    )
    n, m = len(canvases), len(others)
    ms = {k: s.scaled(1e3) for k, s in times.items()}
    return [
        Result(
            NAME,
            "CNN errors, held-out handwriting fonts",
            100 * errors["new"],
            "%",
            n=n,
            baseline=100 * errors["old"],
            baseline_label="today's CNN",
            ratio=errors["new"] / errors["old"] if errors["old"] else None,
            target=f"ratio <= {TARGET_ERROR_RATIO:.2f}",
            passed=errors["new"] <= TARGET_ERROR_RATIO * errors["old"],
            note=f"{n} drawings: {PER_DIGIT[quick]} of each digit in each of {len(handfonts.HELD_OUT)} fonts "
            f"no choice was made on, read as the app reads a canvas; ratio = ours / today's",
        ),
        Result(
            NAME,
            "CNN accuracy, tests/drawings (mouse)",
            100 * mouse["new"]["accuracy"],
            "%",
            n=mouse["new"]["n"],
            baseline=100 * mouse["old"]["accuracy"],
            baseline_label="today's CNN",
            note=f"declined: {mouse['new']['declined']:.0%} "
            f"(today's CNN with a threshold: {mouse['old']['declined']:.0%})",
        ),
        Result(
            NAME,
            "CNN MNIST test accuracy",
            100 * mnist,
            "%",
            n=10_000,
            baseline=100 * (old.test_accuracy or float("nan")),
            baseline_label="today's CNN",
            target=f">= {100 * TARGET_MNIST:g}%",
            passed=mnist >= TARGET_MNIST,
        ),
        Result(
            NAME,
            "CNN non-digits declined",
            100 * refused["new"],
            "%",
            n=m,
            baseline=100 * refused["old"],
            baseline_label="today's CNN, same calibration",
            target=f">= {100 * TARGET_DECLINED_NONDIGITS:g}%",
            passed=refused["new"] >= TARGET_DECLINED_NONDIGITS,
            note=f"{m} drawings ({by_kind}), testkit/nondigits.py with held-out fonts; rule: {threshold}; "
            + "; ".join(
                f"the shipped CNN by {score} instead: {refused[score]:.1%} of non-digits, "
                f"{digits_by[score]:.2%} of the digits"
                for score in others_rules
            ),
        ),
        Result(
            NAME,
            "CNN digits declined, held-out fonts",
            100 * declined["new"],
            "%",
            n=n,
            baseline=100 * declined["old"],
            baseline_label="today's CNN, same calibration",
            target=f"<= {100 * TARGET_DECLINED_DIGITS:g}%",
            passed=declined["new"] <= TARGET_DECLINED_DIGITS,
            note="the same held-out digits as the errors row",
        ),
        Result.timed(
            NAME,
            "read_drawing, CNN vs today's",
            ms["new"],
            baseline=ms["old"].median,
            baseline_label="today's CNN",
            ratio=ms["new"].median / ms["old"].median,
            target=f"ratio <= {TARGET_TIME_RATIO:g}",
            passed=ms["new"].median <= TARGET_TIME_RATIO * ms["old"].median,
            note="280x280 font drawings, 1 thread, taking turns call by call; ratio = ours / today's",
        ),
    ]
