"""python scripts/issue15/nd_sweep.py CHECKPOINT ...: TUNE non-digits declined by the top probability at
temperatures T (softmax(z / T)) and calibration shares (the share of TUNE-font digits declined)."""

import sys

import torch

from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.data import normalize

torch.set_num_threads(1)
E = torch.load("experiments/eval.pt")
T = torch.load("experiments/tune_nondigits.pt")


@torch.no_grad()
def logits(model, images):
    model.eval()
    return torch.cat([model(normalize(x)).float() for x in images.split(512)])


for path in sys.argv[1:]:
    m = load_checkpoint(path).model
    zd = logits(m, E["tune_images"])
    flat = [p for p in T["pieces"] if p is not None]
    kinds = [k for p, k in zip(T["pieces"], T["kinds"]) if p is not None]
    zt = logits(m, torch.cat(flat))
    owner = torch.cat([torch.full((len(p),), i) for i, p in enumerate(flat)])
    for temp in (1.0, 1.5, 2.0, 3.0):
        row = []
        for share in (0.01, 0.015, 0.02):
            thr = torch.quantile(zd.div(temp).softmax(1).amax(1).double(), share)
            low = zt.div(temp).softmax(1).amax(1) < thr
            per = torch.zeros(len(flat), dtype=torch.bool).index_put_((owner,), low, accumulate=True)
            by = {
                k: per[torch.tensor([kk == k for kk in kinds])].float().mean().item()
                for k in ("letter", "doodle", "crossed out")
            }
            kinds_text = f"L {by['letter']:.2f} D {by['doodle']:.2f} X {by['crossed out']:.2f}"
            row.append(f"share {share}: all {per.float().mean():.3f} ({kinds_text}) thr {thr:.3f}")
        print(path, "T", temp, " | ".join(row), flush=True)
