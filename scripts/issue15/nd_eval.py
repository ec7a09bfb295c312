"""python scripts/issue15/nd_eval.py CHECKPOINT ... : 'not a digit' on TUNE data, for several scores.

Threshold per score: the 1% quantile of the TUNE-font digits (experiments/eval.pt); then the declined
share of TUNE letters, TUNE doodles and crossings-out (experiments/tune_nondigits.pt, any piece below),
training-generator validation non-digits, tests/drawings; and MNIST test accuracy with --mnist.
"""

import json
import sys

import torch

from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.data import load_mnist, normalize
from mnist_demo.metrics import accuracy

torch.set_num_threads(1)
E = torch.load("experiments/eval.pt")
T = torch.load("experiments/tune_nondigits.pt")
SCORES = {
    "msp": lambda z: z.softmax(1).amax(1),
    "energy": lambda z: torch.logsumexp(z, 1),
    "maxlogit": lambda z: z.amax(1),
}


@torch.no_grad()
def logits(model, images):
    model.eval()
    return torch.cat([model(normalize(x)).float() for x in images.split(512)]) if len(images) else torch.zeros(0, 10)


def main():
    mnist = "--mnist" in sys.argv
    for path in [a for a in sys.argv[1:] if not a.startswith("--")]:
        ck = load_checkpoint(path)
        m = ck.model
        zd = logits(m, E["tune_images"])
        zr = logits(m, E["real_images"])
        zl = logits(m, E["letters"])
        zv = logits(m, E["val_outliers"][:600])
        flat = [p for p in T["pieces"] if p is not None]
        zt = logits(m, torch.cat(flat))
        owner = torch.cat([torch.full((len(p),), i) for i, p in enumerate(flat)])
        kinds = [k for p, k in zip(T["pieces"], T["kinds"]) if p is not None]
        out = {"model": path, "tune_err": float((zd.argmax(1) != E["tune_labels"]).float().mean())}
        for name, f in SCORES.items():
            thr = float(torch.quantile(f(zd).double(), 0.01))
            low = f(zt) < thr
            per = torch.zeros(len(flat), dtype=torch.bool).index_put_((owner,), low, accumulate=True)
            r = {"letters": float((f(zl) < thr).float().mean()), "val_train_gen": float((f(zv) < thr).float().mean())}
            for k in ("letter", "doodle", "crossed out"):
                sel = torch.tensor([kk == k for kk in kinds])
                r["tune_" + k] = float(per[sel].float().mean())
            r["tune_all"] = float(per.float().mean())
            r["real_declined"] = float((f(zr) < thr).float().mean())
            out[name] = {k: round(v, 3) for k, v in r.items()}
        if mnist:
            out["mnist"] = accuracy(m, load_mnist(train=False))
        print(json.dumps(out))
        with open("experiments/nd_eval.jsonl", "a") as fh:
            fh.write(json.dumps(out) + "\n")


main()
