"""python scripts/issue15/evalck.py CHECKPOINT ...: what measure.evaluate says of each."""

import json
import sys

from measure import evaluate

from mnist_demo.checkpoint import load_checkpoint

for path in sys.argv[1:]:
    print(path, json.dumps({k: round(v, 4) for k, v in evaluate(load_checkpoint(path).model).items()}), flush=True)
