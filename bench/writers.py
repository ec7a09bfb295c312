"""Fine-tuning per writer, as people use it: 3 drawings of each digit in, the writer's other drawings measured.

Writers (`testkit/writers.py`, group 'bench'): font writers, each one of the HELD_OUT handwriting fonts,
and habit writers, who write two or three digits in an unusual way every time (a slashed 0, a 1 with a
flag, a mirrored 3, ...). For each shipped model and writer, `finetune` (the app's own, with its default
config) learns from the first 3 drawings of each digit; the errors on the writer's other drawings are
counted before and after, and MNIST test accuracy (all 10,000) before and after. Rows: the share of the
writers' errors removed, summed over writers, and the mean MNIST drop, per model. The baseline is
today's model with today's fine-tuning (bench/baseline, `TODAY` below), on the same writers (full run only).

    python -m bench --only writers [--quick]
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from bench.report import Result
from mnist_demo.checkpoint import Checkpoint, load_checkpoint
from mnist_demo.data import Split, load_mnist
from mnist_demo.finetune import FinetuneConfig, FinetuneResult, config_for, finetune
from mnist_demo.metrics import accuracy
from mnist_demo.personal import PersonalSet
from mnist_demo.preprocess import sketch_to_tensor
from testkit.server import ROOT
from testkit.timing import one_torch_thread
from testkit.writers import Writer, writers

NAME = "writers"
MODELS = ("cnn", "mlp", "mlp-guide")
WRITERS = {True: (1, 1), False: (3, 3)}  # (font writers, habit writers)
PER_DIGIT = 8  # drawings of each digit per writer
TRAIN_PER_DIGIT = 3  # of which the fine-tuning sees these
TARGETS = {"cnn": (0.75, 0.15), "mlp": (0.5, 0.5), "mlp-guide": (0.5, 0.5)}  # (errors cut, MNIST drop in points)
MNIST_EVAL = {True: 2_000, False: 10_000}  # MNIST test digits measured before and after (all, in the full run)
TODAY = FinetuneConfig(max_steps=60, lr=1e-3, blend=0.8, replay_share=0.75)  # the fine-tuning before issue 15


@dataclasses.dataclass(frozen=True)
class Outcome:
    errors_before: int
    errors_after: int
    mnist_drop_pp: float  # mean over writers, in percentage points


def _sets(writer: Writer) -> tuple[PersonalSet, Split]:
    """(the drawings fine-tuned on, as the app holds them; the rest, as a split)."""
    train, test = writer.split(TRAIN_PER_DIGIT)
    mine = PersonalSet()
    for i in train:
        mine.add(writer.canvases[i], writer.digits[i])
    images = np.stack([sketch_to_tensor(writer.canvases[i]).image for i in test])
    return mine, Split(torch.from_numpy(images), torch.tensor([writer.digits[i] for i in test]))


def measure(checkpoint: Checkpoint, sets: list[tuple[PersonalSet, Split]], config: FinetuneConfig) -> Outcome:
    """Fine-tune `checkpoint` for each writer in turn (from the same start) and sum up."""
    test = load_mnist(train=False)
    before = after = 0
    drops = []
    for mine, theirs in sets:
        wrong = round((1 - accuracy(checkpoint.model, theirs)) * len(theirs))
        result = next(e for e in finetune(checkpoint, mine, config, mnist_test=test) if isinstance(e, FinetuneResult))
        before += wrong
        after += round((1 - accuracy(result.checkpoint.model, theirs)) * len(theirs))
        drops.append(100 * (result.mnist_before - result.mnist_after))
    return Outcome(before, after, float(np.mean(drops)))


def run(quick: bool) -> list[Result]:
    """Two rows per shipped model: errors cut, MNIST drop."""
    everyone = writers("bench", *WRITERS[quick], PER_DIGIT)
    rows = []
    with one_torch_thread():  # as the app fine-tunes: one visitor's request, one thread
        sets = [_sets(w) for w in everyone]
        for name in MODELS:
            new = load_checkpoint(ROOT / "weights" / f"{name}.safetensors")
            old = load_checkpoint(ROOT / "bench" / "baseline" / f"{name}.safetensors")
            sizes = {"holdout_share": 0.0, "mnist_eval_size": MNIST_EVAL[quick]}
            ours = measure(new, sets, dataclasses.replace(config_for(new), **sizes))
            today = None if quick else measure(old, sets, dataclasses.replace(TODAY, **sizes))
            cut_target, drop_target = TARGETS[name]
            cut = 1 - ours.errors_after / ours.errors_before if ours.errors_before else None
            cut_today = 1 - today.errors_after / today.errors_before if today and today.errors_before else None
            today_errors = f" (today: {today.errors_before} -> {today.errors_after})" if today else ""
            rows += [
                Result(
                    NAME,
                    f"{name}: writers' errors cut by fine-tuning",
                    100 * cut if cut is not None else float("nan"),
                    "%",
                    n=len(sets),
                    baseline=100 * cut_today if cut_today is not None else None,
                    baseline_label="today's model and fine-tuning",
                    target=f">= {100 * cut_target:g}%",
                    passed=cut is not None and cut >= cut_target,
                    note=f"{len(sets)} writers, {TRAIN_PER_DIGIT} drawings of each digit in, "
                    f"{PER_DIGIT - TRAIN_PER_DIGIT} out; "
                    f"errors {ours.errors_before} -> {ours.errors_after}{today_errors}",
                ),
                Result(
                    NAME,
                    f"{name}: MNIST drop after fine-tuning",
                    ours.mnist_drop_pp,
                    "pp",
                    n=len(sets),
                    baseline=today.mnist_drop_pp if today else None,
                    baseline_label="today's",
                    target=f"<= {drop_target:g} pp",
                    passed=ours.mnist_drop_pp <= drop_target,
                    note=f"mean over the writers, {MNIST_EVAL[quick]:,} MNIST test digits",
                ),
            ]
    return rows
