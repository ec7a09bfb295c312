"""The benchmark suite: every number the README and the app's comments promise, measured on this machine.

One module per benchmark (predict, roundtrip, training, contention, startup, robustness), each with a
`run(quick) -> list[Result]`; `report` turns the results into a table and docs/benchmarks.md. Timings are
medians over repeated runs with their p5-p95 spread, and comparisons are ratios measured in the same run,
so a busy machine moves both sides alike.

    python -m bench --quick            # under two minutes on 2 cores
    python -m bench --write            # the full suite (~10 minutes), then docs/benchmarks.md
    python -m bench --only predict     # one benchmark
"""
