"""`python -m bench --quick` runs to the end in CI's environment: every benchmark completes and reports.

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

from bench.__main__ import BENCHMARKS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.mnist
def test_quick_benchmarks_all_complete(mnist_train, mnist_test):
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    run = subprocess.run([sys.executable, "-m", "bench", "--quick"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    out = run.stdout + run.stderr
    assert run.returncode in (0, 1), f"the bench crashed (exit {run.returncode}):\n{out[-3000:]}"
    assert "did not complete" not in out, out[-3000:]
    table = [line.split()[0] for line in run.stdout.splitlines() if line[:1].isalpha()]
    for name in BENCHMARKS:
        assert name in table, f"no row from the {name} benchmark:\n{run.stdout[-3000:]}"
    assert "targets met" in run.stdout
