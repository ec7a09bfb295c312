"""What scripts/issue15 measures a model on: MNIST, TUNE-font digits, tests/drawings, and declines at the
threshold that declines 1% of the TUNE digits (experiments/eval.pt, from make_eval.py)."""

import torch

from mnist_demo.data import Split, load_mnist
from mnist_demo.metrics import accuracy
from mnist_demo.reject import scores_of


def evaluate(model):
    E = torch.load("experiments/eval.pt")
    out = {"mnist": accuracy(model, load_mnist(train=False))}
    tune = Split(E["tune_images"], E["tune_labels"])
    real = Split(E["real_images"], E["real_labels"])
    out["tune_err"] = 1 - accuracy(model, tune)
    out["real_err"] = 1 - accuracy(model, real)
    p = scores_of(model, tune.images)
    thr = float(torch.quantile(p.double(), 0.01))
    out["thr"] = thr
    out["letters_declined"] = float((scores_of(model, E["letters"]) < thr).float().mean())
    out["outliers_declined"] = float((scores_of(model, E["val_outliers"]) < thr).float().mean())
    out["real_declined"] = float((scores_of(model, real.images) < thr).float().mean())
    out["mnist_declined"] = float((scores_of(model, load_mnist(train=False).images) < thr).float().mean())
    return out
