"""python scripts/issue15/residual.py CHECKPOINT: "not a digit" by energy less the features' residual, on TUNE data.

For each rank of the digits' subspace and each weight (mnist_demo/residual.py, fitted on MNIST's training
digits), the threshold is the 1% quantile of the TUNE-font digits (experiments/eval.pt); then the declined
share of the TUNE non-digits (experiments/tune_nondigits.pt, any piece below) by kind, and of the TUNE
letters. The first line is energy alone. TUNE data only.
"""

import sys

import torch

from mnist_demo import residual
from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.data import load_mnist
from mnist_demo.features import digit_logits_and_features
from mnist_demo.reject import Decline, energy

torch.set_num_threads(2)
E = torch.load("experiments/eval.pt")
T = torch.load("experiments/tune_nondigits.pt")
model = load_checkpoint(sys.argv[1]).model.eval()
flat = [p for p in T["pieces"] if p is not None]
kinds = [k for p, k in zip(T["pieces"], T["kinds"]) if p is not None]
owner = torch.cat([torch.full((len(p),), i) for i, p in enumerate(flat)])
sets = {"digits": E["tune_images"], "nondigits": torch.cat(flat), "letters": E["letters"]}
outputs = {k: digit_logits_and_features(model, v) for k, v in sets.items()}
train_logits, train_features = digit_logits_and_features(model, load_mnist(train=True).images)


def report(name: str, rule: Decline) -> None:
    scores = {k: rule.scores(*v) for k, v in outputs.items()}
    below = float(torch.quantile(scores["digits"].double(), 0.01))
    low = scores["nondigits"] < below
    per = torch.zeros(len(flat), dtype=torch.bool).index_put_((owner,), low, accumulate=True)
    by_kind = {
        k: round(float(per[torch.tensor([x == k for x in kinds])].float().mean()), 3) for k in sorted(set(kinds))
    }
    letters = float((scores["letters"] < below).float().mean())
    print(f"{name:24s} TUNE non-digits {float(per.float().mean()):.3f} {by_kind} letters {letters:.3f}", flush=True)


report("energy", Decline(0.0, "energy"))
for rank in (16, 32, 48, 64):
    for weight in (0.2, 1 / 3, 0.5):
        subspace = residual.fit(train_features, energy(train_logits), rank, weight)
        report(f"rank {rank} weight {weight:.2f}", Decline(0.0, "residual", subspace))
