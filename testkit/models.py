"""Networks with every weight random, batch norm included, for tests that compare two forward passes.

A freshly built SmallCNN has batch norm at identity (weight 1, bias 0, mean 0, variance 1), which would
hide any mistake in folding it; here its statistics and affine weights are random, about a third of the
scales negative.

    python -c "from testkit.models import random_model; print(random_model('cnn', 8, crop=2))"
"""

from __future__ import annotations

import torch
from torch import nn

from mnist_demo.models import build_model


def random_model(kind: str, size: int, crop: int = 0, seed: int = 0) -> nn.Module:
    """`build_model(kind, size, crop)` in eval mode with random weights and batch-norm statistics."""
    generator = torch.Generator().manual_seed(seed)
    model = build_model(kind, size, crop)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.weight.copy_(torch.randn(n, generator=generator) + 0.4)  # ~1/3 negative
                module.bias.copy_(0.5 * torch.randn(n, generator=generator))
                module.running_mean.copy_(0.5 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.2 + torch.rand(n, generator=generator) * 2)
            elif isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) / fan_in**0.5)
                if module.bias is not None:
                    module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
    return model.eval()
