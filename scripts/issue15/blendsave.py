"""python scripts/issue15/blendsave.py CHECKPOINT SHARE OUT [FROM]: keep SHARE of CHECKPOINT's change from FROM
(default bench/baseline/cnn.safetensors, the first stage), save to OUT: what train --init FROM --keep SHARE gives."""

import sys

from mnist_demo.checkpoint import load_checkpoint, save_checkpoint
from mnist_demo.train import blend

old = load_checkpoint(sys.argv[4] if len(sys.argv) > 4 else "bench/baseline/cnn.safetensors").model
new = load_checkpoint(sys.argv[1])
blend(new.model, old, float(sys.argv[2]))
save_checkpoint(sys.argv[3], new.model, **new.metadata)
