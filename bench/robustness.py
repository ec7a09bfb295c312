"""Canvas robustness, from bench/canvas_robustness.py: does a digit drawn on a canvas read as well as MNIST's?

MNIST test digits are redrawn as a person would (traced with a round brush of random width, at random
sizes and places, under several canvas conditions) and read through the app's preprocessing; the row is
the shipped CNN's worst accuracy gap to the same digits' original 28 x 28 images, in percentage points.

    python -m bench --only robustness [--quick]     # --quick: 300 digits instead of 2,000
"""

from __future__ import annotations

from bench import canvas_robustness
from bench.report import Result
from testkit.server import ROOT
from testkit.timing import one_torch_thread

NAME = "robustness"
N = {True: canvas_robustness.QUICK_N, False: canvas_robustness.DEFAULT_N}
TARGET_GAP_PP = canvas_robustness.TARGET_GAP_PP


def run(quick: bool) -> list[Result]:
    """The row of this benchmark: the CNN's worst canvas condition."""
    with one_torch_thread():  # as the script does: one drawing at a time, as in the app
        result = canvas_robustness.run([str(ROOT / "weights" / "cnn.safetensors")], N[quick])
    model = result["cnn_models"][0]
    canvases = [row for row in result["rows"] if row["canvas"]]
    worst = min(canvases, key=lambda row: row[f"{model}_gap_pp"])
    original = next(row for row in result["rows"] if not row["canvas"])  # the originals come first
    each = ", ".join(f"{row['condition']} {100 * row[f'{model}_accuracy']:.1f}%" for row in canvases)
    return [
        Result(
            NAME,
            "CNN, worst canvas gap vs original digits",
            worst[f"{model}_gap_pp"],
            "pp",
            target=f">= -{TARGET_GAP_PP:g} pp",
            passed=worst[f"{model}_gap_pp"] >= -TARGET_GAP_PP,
            note=f"{result['n']} MNIST test digits (one digit = {100 / result['n']:.2f} pp), seed "
            f"{result['seed']}; original {100 * original[f'{model}_accuracy']:.1f}%, {each}; "
            f"worst: {worst['condition']}",
        )
    ]
