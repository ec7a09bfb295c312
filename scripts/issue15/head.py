"""python scripts/issue15/head.py CHECKPOINT [stats | SPEC ...]: the CNN's last layer refitted with an energy margin.

On frozen features (cached in experiments/head_feats.pt), for each SPEC such as
"lam=1,m_in=3.5,m_out=2.4,epochs=2,keep=0.4/0.5/0.6/0.7" (keys of `fit`, keep: shares of the change kept):
MNIST test accuracy, TUNE-font digits misread, TUNE non-digits declined by energy at 1% of TUNE digits
declined (by kind), training-generator validation non-digits declined, tests/drawings declined. "stats"
prints the log-sum-exp quantiles of each set. CHECKPOINT: the CNN before mnist_demo.energy_head (what it
starts from). V2=1 (or both) trains on the outliers_v2.patch pool instead (or as well). TUNE data only.
"""

import os
import sys
import time

import torch
import torch.nn.functional as F

from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.data import load_mnist, normalize

torch.set_num_threads(1)
X = "experiments/"
E = torch.load(X + "eval.pt")
T = torch.load(X + "tune_nondigits.pt")
ck = load_checkpoint(sys.argv.pop(1))
m = ck.model.eval()  # the CNN before the refit


@torch.no_grad()
def feats(x):
    return torch.cat([m.features(normalize(b) if b.dtype == torch.uint8 else b).flatten(1) for b in x.split(1000)])


t = time.time()
cache = X + "head_feats.pt"  # features only: the same for the CNN before and after a head refit
try:
    D = torch.load(cache)
except FileNotFoundError:
    tr, te = load_mnist(True), load_mnist(False)
    sty = torch.load(X + "styled.pt")
    out = torch.load(X + "outliers.pt")
    flat = [p for p in T["pieces"] if p is not None]
    D = dict(
        tr=feats(tr.images),
        ytr=tr.labels,
        te=feats(te.images),
        yte=te.labels,
        sty=feats(sty["images"][:3000]),
        ysty=sty["labels"][:3000],
        out=feats(out[:4000]),
        tune=feats(E["tune_images"]),
        real=feats(E["real_images"]),
        nd=feats(torch.cat(flat)),
        owner=torch.cat([torch.full((len(p),), i) for i, p in enumerate(flat)]),
        kinds=[k for p, k in zip(T["pieces"], T["kinds"]) if p is not None],
        val=feats(E["val_outliers"]),
    )
    torch.save(D, cache)
print("features", round(time.time() - t), "s", flush=True)
if os.environ.get("QD"):  # Quick, Draw! doodles (mnist_demo/doodles.py's pool) beside the training non-digits
    c3 = X + "head_feats_qd.pt"
    try:
        qd = torch.load(c3)
    except FileNotFoundError:
        qd = feats(torch.load(os.environ["QD"])["images"])
        torch.save(qd, c3)
    if os.environ.get("QD_N"):  # a random subset of them, so as to weigh them against the others
        qd = qd[torch.randperm(len(qd), generator=torch.Generator().manual_seed(0))[: int(os.environ["QD_N"])]]
    D["out"] = torch.cat([D["out"], qd]) if os.environ.get("QD_ONLY") is None else qd
    print("with Quick, Draw! doodles", D["out"].shape, flush=True)
if os.environ.get("V2"):
    c2 = X + "head_feats_v2.pt"
    try:
        D["out"] = torch.load(c2)
    except FileNotFoundError:
        D["out"] = feats(torch.load(X + "outliers_v2.pt"))
        torch.save(D["out"], c2)
    if os.environ.get("V2") == "both":
        D["out"] = torch.cat([D["out"], feats(torch.load(X + "outliers.pt")[:4000])])
    print("v2 outliers", D["out"].shape, flush=True)
W0, b0 = m.classifier.weight.detach().clone(), m.classifier.bias.detach().clone()


def evaluate(W, b, tag):
    def z(f):
        return f @ W.T + b

    acc = (z(D["te"]).argmax(1) == D["yte"]).float().mean().item()

    def lse(f):
        return z(f).logsumexp(1)

    thr = torch.quantile(lse(D["tune"]).double(), 0.01).item()
    low = lse(D["nd"]) < thr
    n = int(D["owner"].max()) + 1
    per = torch.zeros(n, dtype=torch.bool).index_put_((D["owner"],), low, accumulate=True)
    kinds = D["kinds"]
    by = " ".join(
        f"{k[0]}{per[torch.tensor([kk == k for kk in kinds])].float().mean():.3f}"
        for k in ("letter", "doodle", "crossed out")
    )
    tune_err = (z(D["tune"]).argmax(1) != E["tune_labels"]).float().mean().item()
    print(
        f"{tag:40s} mnist {acc:.4f} tune_err {tune_err:.4f} nd {per.float().mean():.3f} ({by}) "
        f"val {(lse(D['val']) < thr).float().mean():.3f} real_dec {(lse(D['real']) < thr).float().mean():.3f} "
        f"thr {thr:.2f}",
        flush=True,
    )


evaluate(W0, b0, "shipped")
if len(sys.argv) > 1 and sys.argv[1] == "stats":

    def z(f):
        return f @ W0.T + b0

    for k in ("tr", "tune", "out", "nd"):
        q = torch.quantile(z(D[k]).logsumexp(1), torch.tensor([0.01, 0.1, 0.5, 0.9, 0.99]))
        print(k, [round(v, 2) for v in q.tolist()])
    sys.exit()


def fit(lam, m_in, m_out, epochs=3, lr=1e-3, ls=0.1, seed=0):
    g = torch.Generator().manual_seed(int(seed))
    W, b = W0.clone().requires_grad_(), b0.clone().requires_grad_()
    opt = torch.optim.Adam([W, b], lr=lr)
    Xin = torch.cat([D["tr"], D["sty"]])
    Yin = torch.cat([D["ytr"], D["ysty"]])
    for _ep in range(epochs):
        perm = torch.randperm(len(Xin), generator=g)
        for i in range(0, len(perm), 256):
            idx = perm[i : i + 256]
            o = D["out"][torch.randint(len(D["out"]), (128,), generator=g)]
            zin, zout = Xin[idx] @ W.T + b, o @ W.T + b
            loss = F.cross_entropy(zin, Yin[idx], label_smoothing=ls)
            loss = loss + lam * (
                F.relu(m_in - zin.logsumexp(1)).pow(2).mean() + F.relu(zout.logsumexp(1) - m_out).pow(2).mean()
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
    return W.detach(), b.detach()


for spec in sys.argv[1:]:
    kw = dict(kv.split("=") for kv in spec.split(","))
    kw = {k: (v if k == "keep" else float(v) if k != "epochs" else int(v)) for k, v in kw.items()}
    keeps = [float(k) for k in kw.pop("keep").split("/")] if "keep" in kw else [1.0]
    W1, b1 = fit(**kw)
    for k in keeps:
        W, b = W0 + k * (W1 - W0), b0 + k * (b1 - b0)
        evaluate(W, b, spec)
    continue
    evaluate(W, b, spec)
