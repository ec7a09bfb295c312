"""python scripts/issue15/ft.py TAG model_path key=value ... : per-writer fine-tuning on TUNE writers"""

import json
import os
import pickle
import sys
import time
from dataclasses import replace

import torch

from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.data import Split, load_mnist
from mnist_demo.finetune import FinetuneConfig, FinetuneResult, config_for, finetune
from mnist_demo.metrics import accuracy
from mnist_demo.personal import Entry, PersonalSet
from mnist_demo.preprocess import sketch_to_tensor
from mnist_demo.reject import scores_of
from testkit.writers import writers

torch.set_num_threads(1)
tag, path = sys.argv[1], sys.argv[2]
kw = {}
for a in sys.argv[3:]:
    k, v = a.split("=")
    f = FinetuneConfig.__dataclass_fields__[k]
    kw[k] = (v == "1") if isinstance(f.default, bool) else (float(v) if f.default is None else type(f.default)(v))
cache = "experiments/tune_writers.pkl"
if not os.path.exists(cache):
    ws = writers("tune", 5, 5, 8)
    data = []
    for w in ws:
        imgs = [sketch_to_tensor(c).image for c in w.canvases]
        tr, te = w.split(3)
        data.append((w.name, imgs, w.digits, tr, te))
    with open(cache, "wb") as f:
        pickle.dump(data, f)
with open(cache, "rb") as f:
    data = pickle.load(f)
ck = load_checkpoint(path)
cfg = replace(config_for(ck), **{"holdout_share": 0.0, "mnist_eval_size": 10000, **kw})
print(cfg, flush=True)
test = load_mnist(train=False)
E = torch.load("experiments/eval.pt")
thr = float(torch.quantile(scores_of(ck.model, E["tune_images"]).double(), 0.01))
odd = torch.cat([E["letters"], E["val_outliers"][:500]])


def declined(m):
    return float((scores_of(m, odd) < thr).float().mean())


dec_before = declined(ck.model)
dec_after = []
tot_b = tot_a = 0
drops = []
t = time.time()
for name, imgs, digits, tr, te in data:
    ps = PersonalSet()
    for i in tr:
        ps.entries.append(Entry(imgs[i], imgs[i], digits[i]))
    tsplit = Split(
        torch.tensor(__import__("numpy").stack([imgs[i] for i in te])), torch.tensor([digits[i] for i in te])
    )
    before = round((1 - accuracy(ck.model, tsplit)) * len(te))
    res = [e for e in finetune(ck, ps, cfg, mnist_test=test) if isinstance(e, FinetuneResult)][0]
    after = round((1 - accuracy(res.checkpoint.model, tsplit)) * len(te))
    dec_after.append(declined(res.checkpoint.model))
    tot_b += before
    tot_a += after
    drops.append(res.mnist_before - res.mnist_after)
    print(
        f"{name:50s} errors {before:3d} -> {after:3d}  mnist {res.mnist_before:.4f} -> {res.mnist_after:.4f}",
        flush=True,
    )
r = {
    "tag": tag,
    "model": path,
    **kw,
    "err_before": tot_b,
    "err_after": tot_a,
    "cut": 1 - tot_a / max(tot_b, 1),
    "mnist_drop_pp": 100 * sum(drops) / len(drops),
    "declined_before": dec_before,
    "declined_after": sum(dec_after) / len(dec_after),
    "seconds": round(time.time() - t),
}
print(json.dumps(r))
with open("experiments/ft.jsonl", "a") as f:
    f.write(json.dumps(r) + "\n")
