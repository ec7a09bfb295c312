"""python scripts/issue15/mahalanobis.py CHECKPOINT: Mahalanobis distances of the features, on TUNE data.

The distance to the nearest class mean (tied covariance of MNIST's training digits' features) on the full
features, on features pooled over positions, on the top 32-128 principal directions; alone and z-scored
(on the TUNE digits) beside the energy at weights 0.15-0.35. Threshold: 1% of the TUNE digits. Tried, not
adopted (the full one needs an F x F matrix in the page); rough, as run.
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
head = classifier(m)
flat = [p for p in T["pieces"] if p is not None]
kinds = [k for p, k in zip(T["pieces"], T["kinds"]) if p is not None]
owner = torch.cat([torch.full((len(p),), i) for i, p in enumerate(flat)])
with torch.no_grad():
    Ftr = digit_features(m, tr.images)
    Fd = digit_features(m, E["tune_images"])
    Ft = digit_features(m, torch.cat(flat))
    Fl = digit_features(m, E["letters"])
y = tr.labels


def pooled(F):
    return F.view(len(F), 128, 9).mean(2)


def pcak(k):
    mu = torch.stack([Ftr[y == c].mean(0) for c in range(10)])
    X = Ftr - mu[y]
    U, S, V = torch.pca_lowrank(X, q=k, center=False, niter=4)
    return lambda F: F @ V


variants = {
    "full": lambda F: F,
    "pool": pooled,
    "pca32": pcak(32),
    "pca64": pcak(64),
    "pca128": pcak(128),
    "sqrtpool": lambda F: pooled(F).sqrt(),
}


def fit(G):
    mu = torch.stack([G[y == c].mean(0) for c in range(10)])
    X = G - mu[y]
    cov = X.T @ X / len(X)
    d = cov.shape[0]
    return mu, torch.linalg.inv(cov + 1e-3 * torch.eye(d) * cov.diagonal().mean())


def D(G, mu, prec):
    return -torch.stack([((G - mu[c]) @ prec * (G - mu[c])).sum(1) for c in range(10)], 1).amax(1) * -1


en = {n: head(F).logsumexp(1).detach() for n, F in (("d", Fd), ("t", Ft), ("l", Fl))}


def report(name, sd, st, sl):
    thr = torch.quantile(sd.double(), 0.01).float()
    low = st < thr
    per = torch.zeros(len(flat), dtype=torch.bool).index_put_((owner,), low, accumulate=True)
    r = {
        k: round(float(per[torch.tensor([kk == k for kk in kinds])].float().mean()), 3)
        for k in ("letter", "doodle", "crossed out")
    }
    print(
        f"{name:20s} all {float(per.float().mean()):.3f}",
        r,
        "L374",
        round(float((sl < thr).float().mean()), 3),
        flush=True,
    )


report("energy", en["d"], en["t"], en["l"])
for vn, f in variants.items():
    mu, prec = fit(f(Ftr))

    def maha(F, f=f, mu=mu, prec=prec):
        G = f(F)
        return -torch.stack([((G - mu[c]) @ prec * (G - mu[c])).sum(1) for c in range(10)], 1).amin(1)

    s = {"d": maha(Fd), "t": maha(Ft), "l": maha(Fl)}
    report(vn, s["d"], s["t"], s["l"])
    for a in (0.15, 0.25, 0.35):
        c = {
            k: a * (s[k] - s["d"].mean()) / s["d"].std() + (1 - a) * (en[k] - en["d"].mean()) / en["d"].std() for k in s
        }
        report(f"{vn}+E@{a}", c["d"], c["t"], c["l"])
