"""python scripts/issue15/traced.py: the CNN's declines of MNIST test digits traced into pen strokes, by rule.

test_page_reading.py's first 240 MNIST test digits, their skeletons traced into strokes (testkit/traces.py)
and placed on the pad as that test places them, read by `read_strokes` with the shipped CNN's rule and
with the energy rule it shipped with before (below 3.0148). A check made after the residual score was
chosen, not a choice: the residual declined 9 of them, the energy rule 5.
"""

import sys

import numpy as np
import torch

sys.path.insert(0, "tests")
import test_page_reading as harness  # noqa: E402  (its drawings, as the page test draws them)

from mnist_demo.checkpoint import load_checkpoint  # noqa: E402
from mnist_demo.data import load_mnist  # noqa: E402
from mnist_demo.inference import read_strokes  # noqa: E402
from mnist_demo.reject import Decline, decline_threshold  # noqa: E402
from testkit.traces import trace  # noqa: E402

torch.set_num_threads(2)
test = load_mnist(train=False)
rng = np.random.default_rng(harness.SEED)
images, labels = test.images[: harness.MNIST_DIGITS].numpy(), test.labels[: harness.MNIST_DIGITS].numpy()
drawings = [harness.pad_strokes(trace(image), rng) for image in images]
checkpoint = load_checkpoint("weights/cnn.safetensors")
for name, rule in (("shipped", decline_threshold(checkpoint.metadata)), ("energy before", Decline(3.0148, "energy"))):
    readings = [(int(label), read_strokes(checkpoint.model, d, rule)) for d, label in zip(drawings, labels)]
    declined = [(label, r.text) for label, r in readings if r is not None and r.declined]
    misread = sum(r is not None and r.text != str(label) for label, r in readings)
    print(f"{name} ({rule.score}): declined {len(declined)} of {len(drawings)} {declined}; misread {misread}")
