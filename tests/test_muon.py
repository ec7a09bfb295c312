"""Muon: the Newton-Schulz orthogonalisation, which parameters it takes, and one step by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mnist_demo.models import build_model
from mnist_demo.muon import Muon, hidden_matrices, orthogonalize


@pytest.mark.parametrize("shape", [(12, 9), (24, 108), (48, 216), (100, 10)])
def test_orthogonalize_flattens_the_spectrum(shape):
    torch.manual_seed(0)
    # A badly conditioned matrix: singular values from 1e-3 to 10, as momentum often is.
    u, _ = torch.linalg.qr(torch.randn(shape[0], shape[0]))
    v, _ = torch.linalg.qr(torch.randn(shape[1], shape[1]))
    k = min(shape)
    m = u[:, :k] @ torch.diag(torch.logspace(-3, 1, k)) @ v[:, :k].T
    s = torch.linalg.svdvals(orthogonalize(m))
    # The quintic iteration aims for speed, not exactness: singular values land near 1, not on it,
    # and the smallest ones (1e-3 of the largest) are lifted by orders of magnitude.
    assert s.max() < 1.3 and s[: k // 2].min() > 0.6
    assert s.min() > 100 * torch.linalg.svdvals(m / m.norm()).min()
    # Same singular vectors as the input: in their basis the result is diagonal.
    d = u[:, :k].T @ orthogonalize(m) @ v[:, :k]
    assert (d - torch.diag(torch.diag(d))).abs().max() < 1e-3


def test_hidden_matrices_are_the_convolutions_and_hidden_linears():
    cnn, mlp = build_model("cnn", 4), build_model("mlp", 16)
    assert [p.shape for p in hidden_matrices(cnn)] == [(4, 1, 3, 3), (8, 4, 3, 3), (16, 8, 3, 3)]
    assert hidden_matrices(mlp) == [mlp.fc1.weight]  # fc2 maps to the classes: plain SGD


def test_one_step_orthogonalises_matrices_and_plain_sgd_for_the_rest():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.randn(8, 6)).square().sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    lr, momentum = 0.1, 0.9
    Muon(model, lr=lr, momentum=momentum).step()
    w1, b1, w2, b2 = (p.detach() for p in model.parameters())
    # First step: the buffer equals the gradient, so Nesterov's update is (1 + momentum) * gradient.
    expected_w1 = before[0] - lr * orthogonalize((1 + momentum) * grads[0])  # 5 x 6: wide, no rescaling
    assert torch.allclose(w1, expected_w1, atol=1e-6)
    for p, p0, g in [(b1, before[1], grads[1]), (w2, before[2], grads[2]), (b2, before[3], grads[3])]:
        assert torch.allclose(p, p0 - lr * (1 + momentum) * g, atol=1e-6)


def test_a_closure_is_evaluated_and_its_loss_returned():
    model = nn.Linear(3, 2)
    x = torch.randn(4, 3)

    def closure():
        model.zero_grad()
        loss = model(x).square().sum()
        loss.backward()
        return loss

    before = model.weight.detach().clone()
    loss = Muon(model, lr=0.1).step(closure)
    assert torch.is_tensor(loss) and not torch.equal(before, model.weight)
