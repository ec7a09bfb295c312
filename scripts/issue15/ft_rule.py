"""python scripts/issue15/ft_rule.py CHECKPOINT [WRITERS]: the "not a digit" rule after the app's fine-tuning.

For the first WRITERS (4) TUNE writers (experiments/tune_writers.pkl), the app's fine-tuning with its
defaults, then the share of TUNE-font digits (experiments/eval.pt) and of TUNE non-digits declined by
the source's own rule kept as it was, by a top-probability rule calibrated on the source, and by the
fine-tuned model's recalibrated rule ("own", `reject.recalibrated`). TUNE data only. The CNN shipped
with the energy rule: kept, it declined ~3% of the TUNE digits after fine-tuning (1.5% before), the
recalibrated one 1.3-2.1%. With the residual rule: kept 1.4-2.4% (0.9% before), recalibrated 0.8-1.7%."""

import pickle
import sys

import numpy as np
import torch

from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.data import Split, load_mnist
from mnist_demo.finetune import FinetuneResult, config_for, finetune
from mnist_demo.personal import Entry, PersonalSet
from mnist_demo.reject import calibrate, decline_threshold, declines_of

torch.set_num_threads(1)
E = torch.load("experiments/eval.pt")
NONDIGITS = [p for p in torch.load("experiments/tune_nondigits.pt")["pieces"] if p is not None]
with open("experiments/tune_writers.pkl", "rb") as fh:
    data = pickle.load(fh)
ck = load_checkpoint(sys.argv[1])
tune = Split(E["tune_images"], E["tune_labels"])
rules = {"kept": decline_threshold(ck.metadata), "probability": calibrate(ck.model, tune, score="probability")}
test, train = load_mnist(train=False), load_mnist(train=True)


def measure(model, own=None):
    """{rule: (TUNE digits declined, TUNE non-digits declined)}."""
    out = {}
    for name, rule in {**rules, **({"own": own} if own else {})}.items():
        others = np.mean([bool(declines_of(model, p.squeeze(1), rule).any()) for p in NONDIGITS])
        out[name] = (round(float(declines_of(model, tune.images, rule).float().mean()), 4), round(float(others), 3))
    return out


print("source", measure(ck.model), flush=True)
for name, imgs, digits, tr, _ in data[: int(sys.argv[2]) if len(sys.argv) > 2 else 4]:
    mine = PersonalSet()
    for i in tr:
        mine.entries.append(Entry(imgs[i], imgs[i], digits[i]))
    events = finetune(ck, mine, config_for(ck), mnist_train=train, mnist_test=test)
    result = next(e for e in events if isinstance(e, FinetuneResult))
    own = decline_threshold(result.checkpoint.metadata)
    print(name, measure(result.checkpoint.model, own), own, flush=True)
