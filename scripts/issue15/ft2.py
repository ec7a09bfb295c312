"""python scripts/issue15/ft2.py TAG CHECKPOINT [freeze_bn=1] [key=value ...]: per-writer fine-tuning on TUNE writers.

Like ft.py, but MNIST (all 10,000 test digits) is measured once before and after each writer's run here,
and freeze_bn=1 keeps batch norm's running statistics as the source's (momentum 0) while fine-tuning.
"""

import json
import pickle
import sys
import time
import types
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.data import Split, load_mnist
from mnist_demo.finetune import FinetuneConfig, FinetuneResult, config_for, finetune
from mnist_demo.metrics import accuracy
from mnist_demo.personal import Entry, PersonalSet

torch.set_num_threads(1)
tag, path = sys.argv[1], sys.argv[2]
kw, freeze, bn_eval = {}, False, False
for a in sys.argv[3:]:
    k, v = a.split("=")
    if k == "freeze_bn":
        freeze = v == "1"
        continue
    if k == "bn_eval":
        bn_eval = v == "1"
        continue
    f = FinetuneConfig.__dataclass_fields__[k]
    kw[k] = (v == "1") if isinstance(f.default, bool) else (float(v) if f.default is None else type(f.default)(v))
with open("experiments/tune_writers.pkl", "rb") as fh:
    data = pickle.load(fh)
ck = load_checkpoint(path)
if freeze:
    for m in ck.model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = 0.0
if bn_eval:  # batch norm normalises with the source's running statistics while fine-tuning
    for m in ck.model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train = types.MethodType(lambda self, mode=True: nn.Module.train(self, False), m)
cfg = replace(config_for(ck), **{"holdout_share": 0.0, "mnist_eval_size": 1, **kw})
print(cfg, "freeze_bn", freeze, "bn_eval", bn_eval, flush=True)
test = load_mnist(train=False)
train_set = load_mnist(train=True)
ck.model.to(memory_format=torch.channels_last)
mnist_before = accuracy(ck.model, test)
tot_b = tot_a = 0
drops = []
t = time.time()
for name, imgs, digits, tr, te in data:
    ps = PersonalSet()
    for i in tr:
        ps.entries.append(Entry(imgs[i], imgs[i], digits[i]))
    tsplit = Split(torch.tensor(np.stack([imgs[i] for i in te])), torch.tensor([digits[i] for i in te]))
    before = round((1 - accuracy(ck.model, tsplit)) * len(te))
    res = [e for e in finetune(ck, ps, cfg, mnist_train=train_set, mnist_test=test) if isinstance(e, FinetuneResult)][0]
    m = res.checkpoint.model.to(memory_format=torch.channels_last)
    after = round((1 - accuracy(m, tsplit)) * len(te))
    mnist_after = accuracy(m, test)
    tot_b += before
    tot_a += after
    drops.append(mnist_before - mnist_after)
    print(f"{name:50s} errors {before:3d} -> {after:3d}  mnist {mnist_before:.4f} -> {mnist_after:.4f}", flush=True)
r = {
    "tag": tag,
    "model": path,
    "freeze_bn": freeze,
    "bn_eval": bn_eval,
    **kw,
    "err_before": tot_b,
    "err_after": tot_a,
    "cut": 1 - tot_a / max(tot_b, 1),
    "mnist_drop_pp": 100 * sum(drops) / len(drops),
    "max_drop_pp": 100 * max(drops),
    "seconds": round(time.time() - t),
}
print(json.dumps(r))
with open("experiments/ft2.jsonl", "a") as fh:
    fh.write(json.dumps(r) + "\n")
