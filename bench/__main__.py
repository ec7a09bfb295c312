"""python -m bench: run every benchmark (or the ones named), print one table, and optionally write it down.

    python -m bench --quick                  # everything, fewer repeats: under two minutes on 2 cores
    python -m bench                          # everything, ~10 minutes
    python -m bench --write                  # ... and write the table to docs/benchmarks.md
    python -m bench --only stop --write      # ... replacing the stop rows only (docs/benchmarks.json keeps each)
    python -m bench --only predict --only startup

Run it from the repository root with MNIST under $MNIST_ROOT (training needs it). The exit status is 0
when every target is met, 1 otherwise. Torch's default thread count (one per core) applies to the
training benchmark; on cores shared with other jobs, OMP_NUM_THREADS=1 keeps two threads from waiting on
each other at every small op (the predict path and the app use one thread whatever it says).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shlex
import sys
import time
import traceback

import torch

from bench import (
    atlas,
    contention,
    handwriting,
    load,
    page_model,
    page_reading,
    pen_latency,
    predict,
    refusals,
    report,
    robustness,
    roundtrip,
    startup,
    stop,
    training,
    writers,
)
from bench.report import Result
from testkit import server

# In the order they run: the two that only need some running app share one launch, and no app is
# left running during the benchmarks that time this process.
BENCHMARKS = {
    m.NAME: m
    for m in (
        predict,
        page_model,
        page_reading,
        pen_latency,
        roundtrip,
        contention,
        startup,
        load,
        stop,
        refusals,
        training,
        robustness,
        handwriting,
        writers,
        atlas,
    )
}
SHARE_AN_APP = ("roundtrip", "contention")
DOCS = server.ROOT / "docs" / "benchmarks.md"


def run_one(name: str, quick: bool, app: server.App | None) -> list[Result]:
    """One benchmark's rows; a benchmark that crashes becomes one failed row with the error."""
    start = time.perf_counter()
    print(f"[{name}] running ...", flush=True)
    try:
        rows = BENCHMARKS[name].run(quick, app) if name in SHARE_AN_APP else BENCHMARKS[name].run(quick)
    except Exception as err:
        traceback.print_exc()
        rows = [
            Result(
                name,
                "did not complete",
                math.nan,
                "",
                target="completes",
                passed=False,
                note=f"{type(err).__name__}: {err}",
            )
        ]
    print(f"[{name}] done in {time.perf_counter() - start:.0f} s", flush=True)
    return rows


def run_all(names: list[str], quick: bool) -> list[Result]:
    """Run `names` in order; the ones in SHARE_AN_APP share one launch of the app."""
    results: list[Result] = []
    sharing = [n for n in names if n in SHARE_AN_APP]
    with contextlib.ExitStack() as app_scope:
        app = None
        for name in names:
            if name in sharing and app is None:
                try:
                    app = app_scope.enter_context(server.launched())
                except Exception as err:  # each sharing benchmark will try a launch of its own
                    print(f"could not launch the shared app: {err}", file=sys.stderr)
            results += run_one(name, quick, app)
            if sharing and name == sharing[-1]:
                app_scope.close()  # stop it before the benchmarks that time this process
                app = None
    return results


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and epochs: under two minutes")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--write", action="store_true", help=f"write the table to {DOCS.relative_to(server.ROOT)}")
    args = parser.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no version-check thread, no network

    names = [n for n in BENCHMARKS if not args.only or n in args.only]
    machine = report.machine(torch.get_num_threads())
    load_before, start = report.load_average(), time.perf_counter()
    results = run_all(names, args.quick)
    seconds, load_after = time.perf_counter() - start, report.load_average()

    print()
    print(report.text_table(results))
    print()
    for note in report.notes(results):
        print(f"- {note}")
    print(f"\n{report.summary(results)}; {seconds:.0f} s; load average {load_before} before, {load_after} after")
    if args.write:
        threads = [f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"] if "OMP_NUM_THREADS" in os.environ else []
        command = " ".join(threads + [shlex.join(["python", "-m", "bench", *argv])])
        runs = report.record(results, command, load_before, load_after, seconds)
        report.write(DOCS, runs, machine, list(BENCHMARKS))
        print(f"wrote {DOCS.relative_to(server.ROOT)} (and its .json): the rows of {', '.join(runs)}")
    return 0 if all(r.passed is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
