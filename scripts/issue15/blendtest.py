"""python scripts/issue15/blendtest.py CHECKPOINT SHARE ...: keep SHARE of its change from bench/baseline/cnn."""

import copy
import json
import sys

from measure import evaluate

from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.train import blend

old = load_checkpoint("bench/baseline/cnn.safetensors").model
new = load_checkpoint(sys.argv[1])
for share in map(float, sys.argv[2:]):
    model = copy.deepcopy(new.model)
    blend(model, old, share)
    print(share, json.dumps({k: round(v, 4) for k, v in evaluate(model).items()}), flush=True)
