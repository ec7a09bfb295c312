"""`python -m mnist_demo.train` with the pools read from experiments/ (the same seed draws the same ones)."""

import os
import shlex
import sys

import torch

from mnist_demo.checkpoint import save_checkpoint
from mnist_demo.data import Split
from mnist_demo.train import TrainConfig, config_parser, initial_model, train

argv = sys.argv[1:]
args = vars(config_parser().parse_args(argv))
out = args.pop("out")
init = args.pop("init")
args.pop("keep", None)  # blended afterwards by blendsave.py
cfg = TrainConfig(**args)

pools = {}
if cfg.styled:
    d = torch.load(os.environ.get("STYLED_POOL", "experiments/styled.pt"))
    assert len(d["labels"]) >= cfg.styled
    pools["styled"] = Split(d["images"], d["labels"])
if cfg.outliers:
    o = torch.load(os.environ.get("OUTLIERS_POOL", "experiments/outliers.pt"))
    assert len(o) >= cfg.outliers
    pools["outliers"] = o
model, started = initial_model(cfg, init)
device = torch.device("cpu")
last = None
for ev in train(cfg, model, device=device, **pools):
    last = ev
    if ev.test_accuracy is not None:
        print(f"epoch {ev.epoch}: {ev.test_accuracy:.4f} after {ev.train_seconds:.0f} s", flush=True)
save_checkpoint(
    out,
    model,
    config=cfg.__dict__,
    test_accuracy=last.test_accuracy,
    command="python -m mnist_demo.train " + shlex.join(argv),
    seed=cfg.seed,
    train_seconds=round(last.train_seconds, 2),
    steps=last.step,
    hardware={"device": str(device), "torch_threads": torch.get_num_threads()},
    **started,
)
print("saved", out, last.test_accuracy)
