"""TUNE non-digits as the benchmark reads them (split_digits pieces per canvas) -> experiments/tune_nondigits.pt"""

import time

import torch

from mnist_demo.inference import MAX_DIGITS
from mnist_demo.segment import split_digits
from testkit.tune_nondigits import tune_nondigits

torch.set_num_threads(1)
t = time.time()
N, SEED = 600, 7  # the TUNE set's seed: neither the benchmark's (15) nor the calibration's (1)
pieces, kinds = [], []
for kind, canvas in tune_nondigits(N, SEED):
    sketches = split_digits(canvas, limit=MAX_DIGITS)
    pieces.append(torch.stack([torch.from_numpy(s.image) for s in sketches]) if sketches else None)
    kinds.append(kind)
torch.save({"pieces": pieces, "kinds": [str(k) for k in kinds]}, "experiments/tune_nondigits.pt")
print(len(pieces), sum(p is None for p in pieces), "refused", round(time.time() - t), "s")
