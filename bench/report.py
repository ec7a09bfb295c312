"""Benchmark results: one `Result` per row, the table printed after a run, and docs/benchmarks.md.

docs/benchmarks.md is rendered from docs/benchmarks.json, which keeps each benchmark's latest written run
(its rows, command, date, commit and load): `--write` with `--only NAME` replaces that benchmark's rows
and keeps the others', so that a long benchmark can be rerun alone and the page says when each was run.

python -m bench --write                  # prints the table and writes docs/benchmarks.json and .md
python -m bench --only stop --write      # replaces the stop rows only
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch

from testkit.timing import Stats

COLUMNS = ("benchmark", "measurement", "value", "p5-p95 (n)", "baseline, same run", "ratio", "target", "result")


@dataclass(frozen=True)
class Result:
    """One row of the table: a measured value, what it is compared with, and whether it meets its target."""

    benchmark: str  # the module that measured it: predict, roundtrip, training, ...
    measurement: str  # what was measured, in a few words
    value: float  # the median (or the one value, or what `measurement` says) in `unit`
    unit: str  # "ms", "s", "MB", "pp", "images/s", ...
    low: float | None = None  # p5 of the samples, None for a single measurement
    high: float | None = None  # p95 of the samples
    n: int = 1  # samples behind `value`
    baseline: float | None = None  # the comparison, measured in the same run, in `unit`
    baseline_label: str = ""  # what the baseline is, in a few words
    ratio: float | None = None  # how `value` compares with `baseline` (each benchmark says which way round)
    target: str = ""  # the goal in words, "" when the row is for information
    passed: bool | None = None  # None: no target
    note: str = ""  # anything a reader needs to trust the number

    @classmethod
    def timed(cls, benchmark: str, measurement: str, stats: Stats, unit: str = "ms", **fields) -> Result:
        """A row from repeated samples, already in `unit`."""
        return cls(benchmark, measurement, stats.median, unit, stats.p5, stats.p95, stats.n, **fields)


def number(value: float | None, unit: str = "") -> str:
    """A value with sensible digits and its unit: 1.23 ms, 45.6 ms, 1,234 images/s."""
    if value is None:
        return ""
    size = abs(value)
    digits = 0 if size >= 100 else 1 if size >= 10 else 2
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}".strip() if unit != "x" else f"{text}x"


def cells(r: Result) -> list[str]:
    """One row of the table as text, column by column."""
    spread = f"{number(r.low)}-{number(r.high)} ({r.n})" if r.low is not None and r.n > 1 else ""
    baseline = f"{number(r.baseline, r.unit)} {r.baseline_label}".strip() if r.baseline is not None else ""
    verdict = {True: "pass", False: "FAIL", None: ""}[r.passed]
    return [
        r.benchmark,
        r.measurement,
        number(r.value, r.unit),
        spread,
        baseline,
        number(r.ratio, "x"),
        r.target,
        verdict,
    ]


def text_table(results: list[Result]) -> str:
    """The results as aligned plain text, for the terminal."""
    rows = [list(COLUMNS)] + [cells(r) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(results: list[Result]) -> str:
    """The results as a markdown table."""
    align = ["---", "---", "---:", "---:", "---:", "---:", "---", "---"]
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join(align) + "|"]
    for r in results:
        row = [c.replace("|", "/") for c in cells(r)]
        row[1] = row[1].replace("  ", "&emsp;", 1) if row[1].startswith("  ") else row[1]  # a sub-row
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def notes(results: list[Result]) -> list[str]:
    """Each row's note, prefixed with the row it belongs to."""
    return [f"{r.benchmark}, {r.measurement.strip()}: {r.note}" for r in results if r.note]


def summary(results: list[Result]) -> str:
    """How many targets were met, and which were not."""
    checked = [r for r in results if r.passed is not None]
    failed = [r for r in checked if not r.passed]
    text = f"{len(checked) - len(failed)}/{len(checked)} targets met"
    return text + (": failed " + "; ".join(f"{r.benchmark} {r.measurement}" for r in failed) if failed else "")


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(torch_threads: int) -> dict[str, str]:
    """What the numbers were measured on; `torch_threads` is torch's default before any benchmark changed it."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "CPU": cpu_model(),
        "cores": f"{os.cpu_count()} ({usable} usable by this process)",
        "torch threads": f"{torch_threads} by default; the predict path and the app use 1 (see each row)",
        "versions": f"python {platform.python_version()}, torch {torch.__version__}, "
        f"gradio {metadata.version('gradio')}, gradio_client {metadata.version('gradio_client')}",
        "OS": platform.platform(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def load_average() -> str:
    """The load average now, as text."""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1 / 5 / 15 min)"


def commit() -> str:
    """The checked-out commit (with "+changes" when the tree differs from it), or "" outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def record(results: list[Result], command: str, load_before: str, load_after: str, seconds: float) -> dict[str, dict]:
    """One entry per benchmark in `results`, as docs/benchmarks.json keeps it."""
    when = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    runs: dict[str, dict] = {}
    for r in results:
        run = runs.setdefault(
            r.benchmark,
            {
                "command": command,
                "date": when,
                "commit": commit(),
                "load": f"{load_before} before, {load_after} after",
                "seconds": round(seconds),
                "rows": [],
            },
        )
        run["rows"].append(dataclasses.asdict(r))
    return runs


def merged(path: Path, runs: dict[str, dict], machine_info: dict[str, str], order: list[str]) -> dict:
    """docs/benchmarks.json's content with `runs` replacing the same benchmarks' earlier runs."""
    kept = json.loads(path.read_text()) if path.exists() else {"runs": {}}
    every = {**kept.get("runs", {}), **runs}
    return {"machine": machine_info, "runs": {name: every[name] for name in order if name in every}}


def markdown(stored: dict) -> str:
    """docs/benchmarks.md from docs/benchmarks.json's content: how each benchmark was run, on what, the table."""
    runs = stored["runs"]
    results = [Result(**row) for run in runs.values() for row in run["rows"]]
    info = "\n".join(f"- **{k}**: {v}" for k, v in stored["machine"].items())
    how = "\n".join(
        f"- **{name}**: `{run['command']}` at {run['date']} (commit {run['commit'] or 'unknown'}), "
        f"{run['seconds']} s for the run; load average {run['load']}"
        for name, run in runs.items()
    )
    note_lines = "\n".join(f"- {n}" for n in notes(results)) or "- none"
    return f"""# Benchmarks

Written by `python -m bench --write` from docs/benchmarks.json, which keeps each benchmark's latest run.
Each benchmark is a module under `bench/` whose docstring says what it measures; `python -m bench --only
NAME` runs one. A value is the median over n runs (unless its row says p95) with the p5-p95 spread beside
it; a baseline is measured in the same run as its row, and the ratio compares the two, so that load from
other processes moves both sides alike. Targets are for 2 CPU cores; the notes under the table say how
each row was measured and which way round its ratio is. What was changed to reach these numbers (before
and after) and why each missed target is missed: [performance.md](performance.md).

## Machine

{info}

## How each benchmark was run

{how}

## Results

{summary(results)}.

{markdown_table(results)}

## Notes

{note_lines}
"""


def _plain(value: object) -> object:
    """NumPy's scalars (a `passed` computed from arrays is a numpy.bool_) as the Python values JSON takes."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} in a benchmark result")


def write(docs: Path, runs: dict[str, dict], machine_info: dict[str, str], order: list[str]) -> None:
    """Merge `runs` into `docs` (the .md path; its .json beside it) and write both."""
    data = docs.with_suffix(".json")
    stored = merged(data, runs, machine_info, order)
    docs.parent.mkdir(parents=True, exist_ok=True)
    data.write_text(json.dumps(stored, indent=1, allow_nan=True, default=_plain) + "\n")
    docs.write_text(markdown(stored))
