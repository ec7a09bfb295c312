"""python scripts/issue15/block.py CHECKPOINT: the CNN's last convolution block and layer refitted, energy margin.

As head.py, but the third block trains too (its batch norm's statistics frozen), on cached second-block
features; the variants tried are the `fit` calls at the bottom. TUNE data only.
"""

import copy
import sys
import time

import torch
import torch.nn.functional as F

from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.data import load_mnist, normalize

torch.set_num_threads(2)
X = "experiments/"
E = torch.load(X + "eval.pt")
T = torch.load(X + "tune_nondigits.pt")
ck = load_checkpoint(sys.argv[1])
m = ck.model.eval()  # the CNN before the refit
b12 = m.features[:2]


@torch.no_grad()
def f2(x):
    return torch.cat([b12(normalize(b) if b.dtype == torch.uint8 else b) for b in x.split(1000)])


t = time.time()
tr, te = load_mnist(True), load_mnist(False)
flat = [p for p in T["pieces"] if p is not None]
D = dict(
    tr=f2(tr.images),
    te=f2(te.images),
    out=f2(torch.load(X + "outliers.pt")[:4000]),
    tune=f2(E["tune_images"]),
    nd=f2(torch.cat(flat)),
    real=f2(E["real_images"]),
    val=f2(E["val_outliers"]),
)
owner = torch.cat([torch.full((len(p),), i) for i, p in enumerate(flat)])
kinds = [k for p, k in zip(T["pieces"], T["kinds"]) if p is not None]
print("features", round(time.time() - t), flush=True)


def head_of(block, W, b):
    return lambda x: F.linear(block(x).flatten(1), W, b)


@torch.no_grad()
def evaluate(fn, tag):
    def z(x):
        return torch.cat([fn(c) for c in x.split(2000)])

    acc = (z(D["te"]).argmax(1) == te.labels).float().mean().item()

    def lse(x):
        return z(x).logsumexp(1)

    thr = torch.quantile(lse(D["tune"]).double(), 0.01).item()
    per = torch.zeros(len(flat), dtype=torch.bool).index_put_((owner,), lse(D["nd"]) < thr, accumulate=True)
    by = " ".join(
        f"{k[0]}{per[torch.tensor([kk == k for kk in kinds])].float().mean():.3f}"
        for k in ("letter", "doodle", "crossed out")
    )
    print(
        f"{tag:40s} mnist {acc:.4f} nd {per.float().mean():.3f} ({by}) "
        f"val {(lse(D['val']) < thr).float().mean():.3f} real {(lse(D['real']) < thr).float().mean():.3f}",
        flush=True,
    )


blk0 = copy.deepcopy(m.features[2]).eval()
W0 = m.classifier.weight.detach().clone()
bb0 = m.classifier.bias.detach().clone()
evaluate(head_of(blk0, W0, bb0), "start")


def fit(lam=1.0, m_in=3.5, m_out=2.4, epochs=2, lr=3e-4, seed=0, keep=1.0):
    g = torch.Generator().manual_seed(seed)
    blk = copy.deepcopy(blk0).eval()  # BN frozen (running stats), affine trained
    W, b = W0.clone().requires_grad_(), bb0.clone().requires_grad_()
    ps = [p for p in blk.parameters()] + [W, b]
    opt = torch.optim.Adam(ps, lr=lr)
    for _ep in range(epochs):
        perm = torch.randperm(len(D["tr"]), generator=g)
        for i in range(0, len(perm), 256):
            idx = perm[i : i + 256]
            o = D["out"][torch.randint(len(D["out"]), (128,), generator=g)]
            zz = F.linear(blk(torch.cat([D["tr"][idx], o])).flatten(1), W, b)
            zin, zout = zz[: len(idx)], zz[len(idx) :]
            loss = F.cross_entropy(zin, tr.labels[idx], label_smoothing=0.1) + lam * (
                F.relu(m_in - zin.logsumexp(1)).pow(2).mean() + F.relu(zout.logsumexp(1) - m_out).pow(2).mean()
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        for k in keep if isinstance(keep, list) else [keep]:
            blk2 = copy.deepcopy(blk0)
            for p2, p1, p0 in zip(blk2.parameters(), blk.parameters(), blk0.parameters()):
                p2.copy_(p0 + k * (p1 - p0))
            evaluate(
                head_of(blk2, W0 + k * (W.detach() - W0), bb0 + k * (b.detach() - bb0)),
                f"lam {lam} lr {lr} ep {epochs} keep {k}",
            )


fit(lam=3.0, lr=3e-4, epochs=3, keep=[0.7, 1.0])
fit(lam=1.0, m_in=4.0, m_out=2.35, lr=3e-4, epochs=3, keep=[0.7, 1.0])
fit(lam=1.0, lr=1e-3, epochs=2, keep=[0.5, 1.0])
