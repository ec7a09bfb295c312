"""The last layer refitted for "not a digit": the energy loss, the refit, the share kept, the command line.

python -m pytest tests/test_energy_head.py
"""

from __future__ import annotations

import pytest
import torch

from mnist_demo import energy_head
from mnist_demo.checkpoint import load_checkpoint, save_checkpoint
from mnist_demo.energy_head import DIGIT_MARGIN, NONDIGIT_MARGIN, energy_loss, keep_share, refit, training_sets
from mnist_demo.models import build_model
from mnist_demo.reject import decline_threshold


def _logits_with_energy(value: float, n: int = 4) -> torch.Tensor:
    """(n, 10) equal logits whose log-sum-exp is `value`."""
    return torch.full((n, 10), value - torch.tensor(10.0).log().item())


def test_the_loss_is_zero_inside_the_margins_and_grows_outside():
    inside = energy_loss(_logits_with_energy(DIGIT_MARGIN + 1), _logits_with_energy(NONDIGIT_MARGIN - 1))
    assert inside.item() == 0
    low_digits = energy_loss(_logits_with_energy(DIGIT_MARGIN - 1), _logits_with_energy(NONDIGIT_MARGIN - 1))
    high_others = energy_loss(_logits_with_energy(DIGIT_MARGIN + 1), _logits_with_energy(NONDIGIT_MARGIN + 2))
    assert low_digits.item() == pytest.approx(1.0, abs=1e-5)  # squared hinge: (1)^2
    assert high_others.item() == pytest.approx(4.0, abs=1e-4)  # (2)^2


def test_the_refit_lowers_the_energy_of_non_digits_and_keeps_the_digits():
    torch.manual_seed(0)
    # Features: 12 where the digits lie (one centre each), 4 where only the non-digits have ink.
    centres = torch.nn.functional.normalize(torch.randn(10, 12), dim=1) * 2.5
    labels = torch.arange(10).repeat(60)
    digits = torch.cat([centres[labels] + 0.2 * torch.randn(len(labels), 12), 0.1 * torch.randn(len(labels), 4)], 1)
    mixed = 0.5 * centres[torch.randint(10, (200,))]
    others = torch.cat([mixed + 0.2 * torch.randn(200, 12), 3 + 0.3 * torch.randn(200, 4)], 1)
    head = torch.nn.Linear(16, 10)
    with torch.no_grad():  # a head that reads the digits, and gives the non-digits' extra ink large logits
        head.weight.copy_(torch.cat([centres, torch.full((10, 4), 0.5)], 1))
        head.bias.zero_()
    before = head.weight.clone()
    weight, bias = refit(head, digits, labels, others, epochs=300)  # 900 small steps
    assert torch.equal(head.weight, before)  # the refit returns new weights; the head is left as it was

    def energies(x: torch.Tensor) -> torch.Tensor:
        return (x @ weight.T + bias).logsumexp(1)

    assert head(others).logsumexp(1).median() > DIGIT_MARGIN  # before: the non-digits looked like digits
    assert ((digits @ weight.T + bias).argmax(1) == labels).float().mean() > 0.99
    assert energies(digits).median() > DIGIT_MARGIN
    assert energies(others).median() < head(others).logsumexp(1).median() - 5  # from ~8.7 to under 3.7
    assert energies(others).quantile(0.95) < energies(digits).quantile(0.05)  # one threshold now parts them


def test_keep_share_moves_the_head_part_of_the_way():
    head = torch.nn.Linear(3, 2)
    old_w, old_b = head.weight.detach().clone(), head.bias.detach().clone()
    new_w, new_b = old_w + 2, old_b - 4
    keep_share(head, new_w, new_b, 0.25)
    assert torch.allclose(head.weight, old_w + 0.5) and torch.allclose(head.bias, old_b - 1)


def test_a_checkpoint_trained_without_non_digits_is_refused():
    with pytest.raises(ValueError, match="not trained with non-digits"):
        training_sets({"outliers": 0}, None)


def test_the_command_line_refuses_what_it_cannot_refit(tmp_path, capsys):
    path = save_checkpoint(tmp_path / "plain.safetensors", build_model("cnn", 4), config={"seed": 0})
    assert energy_head.main([str(path), "--out", str(tmp_path / "out.safetensors")]) == 2
    assert "not trained with non-digits" in capsys.readouterr().err
    assert not (tmp_path / "out.safetensors").exists()


@pytest.mark.slow
@pytest.mark.mnist
def test_the_command_line_changes_only_the_last_layer(tmp_path, capsys):
    model = build_model("cnn", 4)
    config = {"seed": 0, "styled": 20, "outliers": 50, "label_smoothing": 0.1}
    path = save_checkpoint(
        tmp_path / "small.safetensors", model, config=config, decline_below=0.5, decline_score="probability"
    )
    out = tmp_path / "refitted.safetensors"
    assert energy_head.main([str(path), "--out", str(out)]) == 0
    assert "MNIST test" in capsys.readouterr().out
    before, after = load_checkpoint(path), load_checkpoint(out)
    changed = {
        name
        for (name, a), (_, b) in zip(before.model.state_dict().items(), after.model.state_dict().items(), strict=True)
        if not torch.equal(a, b)
    }
    assert changed == {"classifier.weight", "classifier.bias"}
    meta = after.metadata
    assert meta["energy_head"]["keep"] == energy_head.KEEP and meta["config"] == config
    assert decline_threshold(meta) is None  # the old rule was dropped: reject.py sets a new one
