"""python scripts/issue15/run.py NAME key=value ... : train a variant, evaluate, append to results.jsonl"""

import json
import sys
import time

import torch
from measure import evaluate

from mnist_demo.checkpoint import save_checkpoint
from mnist_demo.data import Split
from mnist_demo.train import TrainConfig, new_model, train

name = sys.argv[1]
kw = {}
for a in sys.argv[2:]:
    k, v = a.split("=")
    f = TrainConfig.__dataclass_fields__[k]
    kw[k] = (v == "1") if isinstance(f.default, bool) else type(f.default)(v)
base = dict(
    model="cnn",
    epochs=3,
    batch_size=128,
    lr=0.2,
    optimizer="sgd",
    schedule="onecycle",
    weight_decay=5e-4,
    label_smoothing=0.1,
    augment=True,
    seed=0,
    log_every=100,
)
base.update(kw)
cfg = TrainConfig(**base)
pools = {}
if cfg.styled:
    d = torch.load("experiments/styled.pt")
    pools["styled"] = Split(d["images"], d["labels"])
if cfg.outliers:
    pools["outliers"] = torch.load("experiments/outliers.pt")
model = new_model(cfg)
t = time.time()
for ev in train(cfg, model, device=torch.device("cpu"), **pools):
    if ev.test_accuracy is not None:
        print(name, ev.epoch, ev.test_accuracy, round(time.time() - t), flush=True)
model.eval()
save_checkpoint(f"experiments/{name}.safetensors", model, config=cfg.__dict__, test_accuracy=ev.test_accuracy)


r = {"name": name, **kw, **evaluate(model), "seconds": round(time.time() - t)}
print(json.dumps(r))
with open("experiments/results.jsonl", "a") as f:
    f.write(json.dumps(r) + "\n")
