"""python scripts/issue15/vim.py CHECKPOINT: the features' residual off the top-k principal subspace, on TUNE data.

ViM's origin (-pinv(W) b) or the training mean; ranks 32-512; the residual alone, ViM's energy - alpha *
residual, and z-scored beside the energy. Threshold: 1% of the TUNE digits. It led to mnist_demo/residual.py
(scripts/issue15/residual.py runs the shipped code). Rough, as run.
"""

import sys

import torch

from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.data import load_mnist
from mnist_demo.features import classifier, digit_features

torch.set_num_threads(2)
E = torch.load("experiments/eval.pt")
T = torch.load("experiments/tune_nondigits.pt")
m = load_checkpoint(sys.argv[1]).model.eval()
tr = load_mnist(train=True)
y = tr.labels
head = classifier(m)
flat = [p for p in T["pieces"] if p is not None]
kinds = [k for p, k in zip(T["pieces"], T["kinds"]) if p is not None]
owner = torch.cat([torch.full((len(p),), i) for i, p in enumerate(flat)])
with torch.no_grad():
    Ftr = digit_features(m, tr.images)
    Fd = digit_features(m, E["tune_images"])
    Ft = digit_features(m, torch.cat(flat))
    Fl = digit_features(m, E["letters"])
    W, b = head.weight, head.bias
    u = -torch.linalg.pinv(W) @ b
F = {"d": Fd, "t": Ft, "l": Fl}
en = {k: head(v).logsumexp(1).detach() for k, v in F.items()}


def report(name, s):
    sd, st, sl = s["d"], s["t"], s["l"]
    thr = torch.quantile(sd.double(), 0.01).float()
    low = st < thr
    per = torch.zeros(len(flat), dtype=torch.bool).index_put_((owner,), low, accumulate=True)
    r = {
        k: round(float(per[torch.tensor([kk == k for kk in kinds])].float().mean()), 3)
        for k in ("letter", "doodle", "crossed out")
    }
    print(
        f"{name:24s} all {float(per.float().mean()):.3f}",
        r,
        "L374",
        round(float((sl < thr).float().mean()), 3),
        flush=True,
    )


report("energy", en)
for origin_name, o in (("vim_u", u), ("mean", Ftr.mean(0))):
    X = Ftr - o
    cov = X.T @ X / len(X)
    evals, evecs = torch.linalg.eigh(cov)
    evecs = evecs.flip(1)
    for k in (32, 64, 128, 256, 512):
        V = evecs[:, :k]

        def res(G, o=o, V=V):
            Z = G - o
            return (Z.pow(2).sum(1) - (Z @ V).pow(2).sum(1)).clamp_min(0).sqrt()

        rtr = res(Ftr)
        alpha = head(Ftr).amax(1).mean() / rtr.mean()
        s = {kk: -res(v) for kk, v in F.items()}
        vim = {kk: en[kk] - alpha * res(v) for kk, v in F.items()}
        report(f"{origin_name} k{k} res", s)
        report(f"{origin_name} k{k} vim", vim)
        for a in (0.25, 0.5):
            c = {
                kk: a * (s[kk] - s["d"].mean()) / s["d"].std() + (1 - a) * (en[kk] - en["d"].mean()) / en["d"].std()
                for kk in s
            }
            report(f"{origin_name} k{k} z@{a}", c)
