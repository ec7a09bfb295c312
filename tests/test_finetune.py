"""Fine-tuning on a visitor's drawings: config checks, the hold-out, the mix, safety of the original,
and (slow, real MNIST) that it teaches a trained CNN unusual handwriting without forgetting MNIST."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from mnist_demo import finetune as finetune_module
from mnist_demo import reject
from mnist_demo.checkpoint import checkpoint_bytes, load_checkpoint
from mnist_demo.data import Split, normalize
from mnist_demo.finetune import (
    MLP_CONFIG,
    FinetuneConfig,
    FinetuneResult,
    blend,
    config_for,
    finetune,
    hold_out,
    mixed_split,
    trained_outliers,
    trained_smoothing,
)
from mnist_demo.inference import prepare
from mnist_demo.models import build_model
from mnist_demo.personal import PersonalSet
from mnist_demo.reject import calibrate, decline_threshold
from mnist_demo.train import Progress
from testkit.styles import UNUSUAL, draw, variations

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "cnn.safetensors"
FAST = FinetuneConfig(max_steps=6, batch_size=16, log_every=2, mnist_eval_size=64)


def unusual_set(per_style: int) -> PersonalSet:
    """`per_style` drawings of every unusual digit, each drawn a little differently, through preprocessing."""
    mine = PersonalSet()
    for k, (digit, strokes) in enumerate(UNUSUAL.values()):
        for style in variations(per_style, seed=100 + k):
            mine.add(draw(strokes, style), digit)
    return mine


@pytest.fixture(scope="module")
def small_set() -> PersonalSet:
    return unusual_set(2)


@pytest.fixture(scope="module")
def fake_mnist() -> Split:
    """Random 'digits' in MNIST's format: enough to run the loop without the real files."""
    g = torch.Generator().manual_seed(0)
    return Split(
        torch.randint(0, 256, (256, 28, 28), dtype=torch.uint8, generator=g), torch.randint(0, 10, (256,), generator=g)
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"max_steps": 0},
        {"max_steps": 1.5},
        {"batch_size": 1},
        {"replay_share": 1.0},
        {"replay_share": -0.1},
        {"lr": 0.0},
        {"lr": float("nan")},
        {"blend": 1.5},
        {"holdout_share": 0.9},
        {"repeats": True},
        {"max_steps": 1000, "batch_size": 1024},
        {"seed": -1},
        {"optimizer": "lbfgs"},
        {"schedule": "cosine"},
        {"label_smoothing": 0.9},
        {"label_smoothing": "0.1"},
    ],
)
def test_config_refuses_bad_values(changes):
    with pytest.raises(ValueError):
        FinetuneConfig(**changes)


def test_steps_follow_the_set_until_the_cap():
    config = FinetuneConfig(max_steps=60, repeats=40, batch_size=64, replay_share=0.75)
    assert config.steps_for(4) == 10  # 4 x 40 drawings at 16 a batch
    assert config.steps_for(1000) == 60
    assert config.steps_for(1) == 3


def test_label_smoothing_follows_the_checkpoint_unless_it_talks_nonsense():
    assert trained_smoothing({"config": {"label_smoothing": 0.1}}) == 0.1
    for metadata in (
        {},
        {"config": None},
        {"config": [0.1]},
        {"config": {"label_smoothing": "0.1"}},
        {"config": {"label_smoothing": True}},
        {"config": {"label_smoothing": 7.0}},
    ):
        assert trained_smoothing(metadata) == 0.0, metadata


def test_hold_out_only_when_enough_and_never_a_digits_last_drawing():
    config = FinetuneConfig(holdout_share=0.25, min_held_out=10)
    assert hold_out([1, 2, 3] * 13, config) == (list(range(39)), [])  # 9 would be held out: too few
    labels = [0] * 30 + [1] * 9 + [2]
    train, held = hold_out(labels, config)
    assert len(held) == 10 and sorted(train + held) == list(range(40))
    assert 39 in train and any(labels[i] == 1 for i in train)  # the only 2 is kept for training
    assert hold_out(labels, config) == (train, held)  # seeded
    assert hold_out(labels, dataclasses.replace(config, seed=1)) != (train, held)


def test_mixed_split_repeats_drawings_evenly_among_replayed_digits(small_set, fake_mnist):
    config = FinetuneConfig(batch_size=16, replay_share=0.75)
    drawings = small_set.as_split()
    mixed = mixed_split(drawings, fake_mnist, steps=9, config=config)
    assert mixed.images.shape == (9 * 16, 28, 28) and mixed.images.dtype == torch.uint8
    mine = 9 * 16 // 4  # 36 of the 144 are the 18 drawings, twice each
    assert torch.equal(mixed.images[:mine], drawings.images.repeat(2, 1, 1))
    assert torch.equal(mixed.labels[:mine], drawings.labels.repeat(2))
    assert len({img.numpy().tobytes() for img in mixed.images[mine:]}) == 9 * 16 - mine  # no replayed digit twice


def test_blend_moves_weights_part_of_the_way_back():
    torch.manual_seed(0)
    old, new = build_model("cnn", 4), build_model("cnn", 4)
    before = {k: v.clone() for k, v in new.state_dict().items()}
    blend(new, old, 0.25)
    for key, value in new.state_dict().items():
        if value.is_floating_point():
            start = old.state_dict()[key]
            assert torch.allclose(value, start + 0.25 * (before[key] - start), atol=1e-6)


def test_an_empty_set_is_refused():
    with pytest.raises(ValueError, match="drawings"):
        next(finetune(build_model("cnn", 4), PersonalSet(), FAST))


def test_streams_progress_then_a_frozen_result_and_leaves_the_original_alone(small_set, fake_mnist):
    original = prepare(build_model("cnn", 4))  # as the app holds models: eval mode, frozen
    weights = {k: v.clone() for k, v in original.state_dict().items()}
    source = load_checkpoint(checkpoint_bytes(original, test_accuracy=0.5)[0])
    events = list(finetune(source, small_set, FAST, fake_mnist, fake_mnist))
    progress, result = events[:-1], events[-1]
    assert all(isinstance(e, Progress) and e.test_accuracy is None for e in progress)
    assert [e.step for e in progress] == [2, 4, 6] and progress[-1].total_steps == 6
    assert isinstance(result, FinetuneResult) and result.steps == 6 and not result.held_out
    assert result.measured_on == len(small_set)  # 18 drawings: too few to hold 10 out
    model = result.checkpoint.model
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    # Laid out as `prepare` lays out the models the app reads with (channels-last conv weights).
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in model.parameters() if p.dim() == 4)
    assert result.checkpoint.metadata["finetuned"]["steps"] == 6
    assert result.checkpoint.metadata["test_accuracy"] is None  # measured on 64 images, not the test set
    assert result.checkpoint.metadata["finetuned"]["from_test_accuracy"] == 0.5
    assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), weights.values()))

    # The source passed as a bare module is never touched, even when the run is stopped midway.
    run = finetune(original, small_set, FAST, fake_mnist, fake_mnist)
    next(run)
    run.close()
    list(finetune(original, small_set, FAST, fake_mnist, fake_mnist))
    assert all(torch.equal(v, weights[k]) for k, v in original.state_dict().items())
    assert not original.training and not any(p.requires_grad for p in original.parameters())


def test_each_kind_of_model_gets_its_own_fine_tuning():
    assert config_for(build_model("cnn", 4)) == FinetuneConfig()
    assert config_for(build_model("mlp", 28)) == MLP_CONFIG != FinetuneConfig()
    assert not MLP_CONFIG.augment  # an MLP reads pixels: shifted copies are other drawings to it
    guide = load_checkpoint(checkpoint_bytes(build_model("mlp", 28), config={"lr": 0.01})[0])
    wide = load_checkpoint(checkpoint_bytes(build_model("mlp", 32), config={"lr": 0.002})[0])
    odd = load_checkpoint(checkpoint_bytes(build_model("mlp", 32), config={"lr": "fast"})[0])
    assert config_for(guide).lr == pytest.approx(1e-3) and config_for(wide).lr == pytest.approx(3e-4)
    assert config_for(odd) == MLP_CONFIG


def test_outlier_exposure_follows_the_checkpoint_unless_it_talks_nonsense():
    assert trained_outliers({"config": {"outliers": 4000, "outlier_weight": 0.5}}) == 0.5
    for metadata in (
        {},
        {"config": {"outliers": 0, "outlier_weight": 0.5}},
        {"config": {"outliers": 4000}},
        {"config": {"outliers": "4000", "outlier_weight": 0.5}},
        {"config": {"outliers": 4000, "outlier_weight": True}},
        {"config": {"outliers": 4000, "outlier_weight": -1}},
    ):
        assert trained_outliers(metadata) == 0.0, metadata


def test_a_model_that_learned_non_digits_keeps_seeing_them(small_set, fake_mnist, monkeypatch):
    pool = fake_mnist.images[:32]
    asked = []
    monkeypatch.setattr(finetune_module, "replay_outliers", lambda: asked.append(1) or pool)
    model = build_model("mlp", 8)
    with_oe = load_checkpoint(checkpoint_bytes(model, config={"outliers": 100, "outlier_weight": 0.5})[0])
    without = load_checkpoint(checkpoint_bytes(model, config={"outliers": 0})[0])
    for source, calls in ((without, 0), (with_oe, 1)):
        *_, result = finetune(source, small_set, FAST, fake_mnist, fake_mnist)
        assert isinstance(result, FinetuneResult) and len(asked) == calls


def test_the_rule_is_set_again_for_the_fine_tuned_model(small_set, fake_mnist, monkeypatch):
    digits = fake_mnist.subset(100)  # stand-ins for the TUNE fonts' digits, which take seconds to draw
    monkeypatch.setattr(reject, "calibration_digits", lambda: digits)
    source = load_checkpoint(
        checkpoint_bytes(
            build_model("mlp", 8),
            decline_below=2.5,
            decline_score="energy",
            decline_calibration={"share_declined": 0.1},
        )[0]
    )
    *_, result = finetune(source, small_set, FAST, fake_mnist, fake_mnist)
    meta = result.checkpoint.metadata
    rule = decline_threshold(meta)
    assert rule.score == "energy" and rule.below != 2.5 and meta["decline_calibration"]["share_declined"] == 0.1
    assert rule.below == pytest.approx(calibrate(result.checkpoint.model, digits, 0.1, "energy").below, abs=1e-6)
    declined = rule.declines(result.checkpoint.model(normalize(digits.images))).float().mean()
    assert abs(declined.item() - 0.1) <= 0.011  # its own logits: the same share of the digits as the source's


def test_a_residual_rule_keeps_its_subspace_and_gets_a_new_threshold(small_set, fake_mnist, monkeypatch):
    digits = fake_mnist.subset(100)
    monkeypatch.setattr(reject, "calibration_digits", lambda: digits)
    model = build_model("cnn", 4).eval()
    rule = calibrate(model, digits, 0.1, reject.RESIDUAL, reject.fit_subspace(model, fake_mnist.images))
    source = load_checkpoint(checkpoint_bytes(model, **reject.with_rule({}, rule, 0.1, "test"))[0])
    *_, result = finetune(source, small_set, FAST, fake_mnist, fake_mnist)
    new = decline_threshold(result.checkpoint.metadata)
    assert new.score == reject.RESIDUAL and new.below != rule.below
    # the subspace stays as fitted (refitting it would need MNIST's training digits in the app)
    assert torch.equal(new.subspace.basis, rule.subspace.basis) and new.subspace.weight == rule.subspace.weight
    declined = reject.declines_of(result.checkpoint.model, digits.images, new).float().mean()
    assert abs(declined.item() - 0.1) <= 0.011


def test_a_model_without_a_rule_gets_none_after_fine_tuning(small_set, fake_mnist, monkeypatch):
    monkeypatch.setattr(reject, "calibration_digits", lambda: pytest.fail("nothing to calibrate"))
    *_, result = finetune(load_checkpoint(checkpoint_bytes(build_model("mlp", 8))[0]), small_set, FAST, fake_mnist)
    assert decline_threshold(result.checkpoint.metadata) is None


@pytest.mark.slow
@pytest.mark.mnist
def test_learns_unusual_handwriting_without_forgetting_mnist(mnist_train, mnist_test, one_thread):
    assert WEIGHTS.is_file(), f"the shipped weights are missing: {WEIGHTS}"
    checkpoint = load_checkpoint(WEIGHTS)
    weights = {k: v.clone() for k, v in checkpoint.model.state_dict().items()}
    mine = unusual_set(7)  # 63 drawings: 15 held out
    config = FinetuneConfig(mnist_eval_size=5000)  # the defaults, measured on half the test set, for time
    *progress, result = finetune(checkpoint, mine, config, mnist_train, mnist_test)
    print(result.summary())
    assert result.held_out and result.measured_on >= config.min_held_out
    assert result.personal_before <= 0.8, "the model already reads these drawings: the test would show nothing"
    assert result.personal_after >= 0.9 and result.personal_after >= result.personal_before + 0.15
    assert result.mnist_after >= result.mnist_before - 0.005, "fine-tuning forgot MNIST"
    assert all(torch.equal(v, weights[k]) for k, v in checkpoint.model.state_dict().items())
    # The result survives a checkpoint round trip, as the app's download and re-upload would do it.
    again = load_checkpoint(checkpoint_bytes(result.checkpoint.model, test_accuracy=result.mnist_after)[0])
    x = normalize(mine.as_split().images[:8])  # (8, 1, 28, 28)
    assert torch.equal(prepare(again.model)(x), result.checkpoint.model(x))
