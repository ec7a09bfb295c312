"""What refusing a hostile input costs: time and peak memory, each case in a fresh Python process.

Two requests a script can send a public Space: a 1 KB weights file whose metadata claims a CNN of width
2048 (the model used to be built before the header was checked: +1.44 GB, seconds), and a drawing whose
six layers name one 6 KB 4096 x 4096 PNG (each layer used to be decoded: +911 MB). Each runs in its own
process, so that its peak resident memory (ru_maxrss) is its own; `measure(root)` runs them against the
code in another checkout too (an older commit, for a before/after).

    python -m bench --only refusals
    python -c "from bench.refusals import measure; print(measure('/path/to/old/checkout'))"
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.report import Result
from testkit.server import ROOT

NAME = "refusals"
TARGET_MS = 100.0
TARGET_MB = 50.0

# Each prints {"ms": ..., "mb": ..., "message": ...}: the refusal's time and the growth of the peak RSS.
PRELUDE = """
import json, resource, time
def measured(call):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        call()
        message = "accepted"
    except Exception as err:
        message = f"{type(err).__name__}: {err}"
    ms = (time.perf_counter() - start) * 1e3
    mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(json.dumps({"ms": ms, "mb": mb, "message": message[:200]}))
"""
CASES = {
    "a 1 KB checkpoint claiming a CNN of width 2048": """
from safetensors.torch import save
from mnist_demo.checkpoint import METADATA_KEY, checkpoint_bytes, load_checkpoint
from mnist_demo.models import build_model
net = build_model("mlp", 4)
meta = {**checkpoint_bytes(net)[1], "model": "cnn", "size": 2048}
data = save(dict(net.state_dict()), metadata={METADATA_KEY: json.dumps(meta)})
assert len(data) < 16 * 1024
measured(lambda: load_checkpoint(data))
""",
    "a drawing with six layers naming one 4096 x 4096 PNG": """
import tempfile
from PIL import Image
from gradio.components.image_editor import EditorData
from gradio.data_classes import FileData
from mnist_demo.canvas import read_pixels
from ui.components import SafeSketchpad
path = tempfile.mktemp(suffix=".png")
Image.new("L", (4096, 4096), 255).save(path)
payload = EditorData(layers=[FileData(path=path)] * 6)
pad = SafeSketchpad(canvas_size=(280, 280), type="numpy")
measured(lambda: read_pixels(pad.preprocess(payload)))
""",
}


def measure(root: Path | str = ROOT) -> dict[str, dict]:
    """{case: {"ms", "mb", "message"}} for the code in `root` (a checkout of this repository)."""
    results = {}
    for case, code in CASES.items():
        out = subprocess.run(
            [sys.executable, "-c", PRELUDE + code], cwd=root, capture_output=True, text=True, timeout=600, check=True
        )
        results[case] = json.loads(out.stdout.strip().splitlines()[-1])
    return results


def run(quick: bool) -> list[Result]:
    rows = []
    for case, got in measure().items():
        refused = got["message"] != "accepted"
        rows.append(
            Result(
                NAME,
                f"refusing {case}",
                got["ms"],
                "ms",
                target=f"refused, < {TARGET_MS:g} ms, < {TARGET_MB:g} MB",
                passed=refused and got["ms"] < TARGET_MS and got["mb"] < TARGET_MB,
                note=f"peak RSS +{got['mb']:.1f} MB; {got['message']}",
            )
        )
    return rows
