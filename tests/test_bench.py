"""`python -m bench --quick` runs to the end in CI's environment: every benchmark completes and reports.
Each runs on its own (`--quick --only NAME`), so that a slow or broken one is named by its test.

Targets are not asserted here (times on a shared CI machine say little); the benchmark table, with its
ratios against baselines measured in the same run, is what docs/benchmarks.md records.

    MNIST_ROOT=../shared/data python -m pytest tests/test_bench.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import BENCHMARKS, SHARE_AN_APP

ROOT = Path(__file__).resolve().parents[1]


# One run per benchmark (the ones that share an app, together): a slow or broken one is named by its own
# test and timeout, not hidden in one long run of all of them.
GROUPS = [SHARE_AN_APP] + [(name,) for name in BENCHMARKS if name not in SHARE_AN_APP]
QUICK_TIMEOUT_S = 600  # per group; the slowest quick benchmark takes about two minutes on 2 busy cores


@pytest.mark.slow
@pytest.mark.mnist
@pytest.mark.parametrize("names", GROUPS, ids="+".join)
def test_quick_benchmark_completes_and_reports(names, mnist_train, mnist_test):
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    only = [arg for name in names for arg in ("--only", name)]
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", *only],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=QUICK_TIMEOUT_S,
    )
    out = run.stdout + run.stderr
    assert run.returncode in (0, 1), f"the bench crashed (exit {run.returncode}):\n{out[-3000:]}"
    assert "did not complete" not in out, out[-3000:]
    table = [line.split()[0] for line in run.stdout.splitlines() if line[:1].isalpha()]
    for name in names:
        assert name in table, f"no row from the {name} benchmark:\n{run.stdout[-3000:]}"
    assert "targets met" in run.stdout


def test_every_benchmark_has_a_quick_run():
    assert sorted(n for group in GROUPS for n in group) == sorted(BENCHMARKS)


def test_seed_summary_groups_runs_by_kind():
    from bench.train_speed import Row, summary, table

    rows = [
        Row("CNN, SGD, 28x28, seed 0", 8.0, 5600.0, 0.9906),
        Row("CNN, Muon, 24x24, seed 0", 6.0, 7500.0, 0.9911),
        Row("CNN, SGD, 28x28, seed 1", 10.0, 4500.0, 0.9892),
        Row("CNN, Muon, 24x24, seed 1", 7.0, 6400.0, 0.9919),
    ]
    lines = summary(rows).splitlines()
    assert lines == [
        "CNN, SGD, 28x28: 2 seeds, 9.00 s (8.00-10.00), accuracy 98.99% (98.92%-99.06%), 1 of 2 at 99% or more",
        "CNN, Muon, 24x24: 2 seeds, 6.50 s (6.00-7.00), accuracy 99.15% (99.11%-99.19%), 2 of 2 at 99% or more",
    ]
    assert table(rows, base=16.0).splitlines()[3].endswith("| 2.7x |")  # 16 s / 6 s
    assert table(rows, base=None).splitlines()[2].endswith("| - |")


def test_writing_one_benchmark_keeps_the_others_rows(tmp_path):
    from bench import report
    from bench.report import Result

    docs, machine, order = tmp_path / "benchmarks.md", {"CPU": "test"}, ["predict", "stop", "atlas"]
    import numpy as np

    passed = np.float64(0.5) < 1  # a numpy.bool_, as a target checked on arrays gives
    first = [
        Result("stop", "Stop to its message", 0.5, "s", target="< 1 s", passed=passed),
        Result("atlas", "x", 1, "s"),
    ]
    report.write(docs, report.record(first, "python -m bench --write", "1", "2", 10), machine, order)
    again = [Result("stop", "Stop to its message", 2.0, "s", target="< 1 s", passed=False)]
    report.write(docs, report.record(again, "python -m bench --only stop --write", "3", "4", 5), machine, order)
    text = docs.read_text()
    assert "| stop | Stop to its message | 2.00 s |" in text and "0.50 s" not in text  # replaced
    assert "| atlas | x | 1.00 s |" in text  # kept, with how it was run
    assert (
        "- **atlas**: `python -m bench --write`" in text and "- **stop**: `python -m bench --only stop --write`" in text
    )
    assert "0/1 targets met: failed stop Stop to its message" in text
    assert text.index("**stop**") < text.index("**atlas**")  # in the benchmarks' order
