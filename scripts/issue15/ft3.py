"""python scripts/issue15/ft3.py TAG CHECKPOINT SHARE [SHARE ...] [bn=1] [key=value ...]: the CNN's blend.

Per-writer fine-tuning as ft2.py measures it (3 drawings of each digit in, the rest out; all 10,000
MNIST test digits), but each writer is fine-tuned once, keeping all of the change (blend=1), and every
SHARE is then measured by blending back to the source (`train.blend`, exactly what `finetune` does with
`blend=SHARE`, since blending is the last step), and again with batch norm's running statistics put
back to the source's with bn=1 (what freezing them while fine-tuning gives, since training normalises
with each batch's own; on the shipped CNN it lost more of MNIST, not less). TUNE writers only.
One line per share and variant -> experiments/ft3.jsonl.
"""

import copy
import json
import pickle
import sys
import time
from dataclasses import replace

import numpy as np
import torch

from mnist_demo import finetune as finetune_module
from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.data import Split, load_mnist, normalize
from mnist_demo.finetune import FinetuneConfig, FinetuneResult, config_for, finetune
from mnist_demo.metrics import accuracy
from mnist_demo.personal import Entry, PersonalSet
from mnist_demo.train import blend

torch.set_num_threads(1)
tag, path = sys.argv[1], sys.argv[2]
shares = [float(a) for a in sys.argv[3:] if "=" not in a]
kw, bns, oe = {}, (False,), True
for a in sys.argv[3:]:
    if a == "bn=1":
        bns = (False, True)
    elif a == "oe=0":  # no non-digits replayed, whatever the checkpoint was trained with
        oe = False
        finetune_module.trained_outliers = lambda metadata: 0.0
    elif "=" in a:
        k, v = a.split("=")
        f = FinetuneConfig.__dataclass_fields__[k]
        kw[k] = (v == "1") if isinstance(f.default, bool) else (float(v) if f.default is None else type(f.default)(v))
variants = [(s, bn) for s in shares for bn in bns]
NONDIGITS = [p for p in torch.load("experiments/tune_nondigits.pt")["pieces"] if p is not None]
with open("experiments/tune_writers.pkl", "rb") as fh:
    data = pickle.load(fh)
ck = load_checkpoint(path)
cfg = replace(config_for(ck), **{"holdout_share": 0.0, "mnist_eval_size": 1, **kw, "blend": 1.0})
print(cfg, shares, flush=True)
test = load_mnist(train=False)
train_set = load_mnist(train=True)
mnist_before = accuracy(ck.model, test)
before = {v: 0 for v in variants}
after = {v: 0 for v in variants}
drops = {v: [] for v in variants}
declined = {v: [] for v in variants}
RUNNING = ("running_mean", "running_var")
t = time.time()
for name, imgs, digits, tr, te in data:
    ps = PersonalSet()
    for i in tr:
        ps.entries.append(Entry(imgs[i], imgs[i], digits[i]))
    tsplit = Split(torch.tensor(np.stack([imgs[i] for i in te])), torch.tensor([digits[i] for i in te]))
    wrong = round((1 - accuracy(ck.model, tsplit)) * len(te))
    res = [e for e in finetune(ck, ps, cfg, mnist_train=train_set, mnist_test=test) if isinstance(e, FinetuneResult)][0]
    tuned = res.checkpoint.model
    for v in variants:
        s, bn = v
        m = copy.deepcopy(tuned)
        blend(m, ck.model, s)
        if bn:
            source = ck.model.state_dict()
            with torch.no_grad():
                for key, value in m.state_dict().items():
                    if key.endswith(RUNNING):
                        value.copy_(source[key])
        e = round((1 - accuracy(m, tsplit)) * len(te))
        a = accuracy(m, test)
        before[v] += wrong
        after[v] += e
        drops[v].append(mnist_before - a)
        threshold = ck.metadata["decline_below"]
        with torch.no_grad():
            m.eval()
            low = [bool((m(normalize(p)).softmax(1).amax(1) < threshold).any()) for p in NONDIGITS]
        declined[v].append(float(np.mean(low)))
        print(
            f"{name:40s} share {s:.2f} bn {bn:d} errors {wrong:3d} -> {e:3d}  mnist {mnist_before:.4f} -> {a:.4f}",
            flush=True,
        )
for v in variants:
    s, bn = v
    r = {
        "tag": tag,
        "model": path,
        **kw,
        "blend": s,
        "source_bn": bn,
        "err_before": before[v],
        "err_after": after[v],
        "cut": 1 - after[v] / max(before[v], 1),
        "mnist_drop_pp": 100 * float(np.mean(drops[v])),
        "max_drop_pp": 100 * max(drops[v]),
        "oe_replay": oe,
        "tune_nondigits_declined": float(np.mean(declined[v])),
        "seconds": round(time.time() - t),
    }
    print(json.dumps(r))
    with open("experiments/ft3.jsonl", "a") as fh:
        fh.write(json.dumps(r) + "\n")
