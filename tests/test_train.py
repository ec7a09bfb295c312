"""The training loop: config checks, learning on real MNIST, reproducibility, stopping, and the CLIs."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mnist_demo import evaluate, train
from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.train import Progress, TrainConfig, new_model


@pytest.mark.parametrize(
    "changes",
    [
        {"lr": float("nan")},
        {"lr": 0.0},
        {"lr": -1.0},
        {"lr": float("inf")},
        {"epochs": 0},
        {"epochs": 2.5},
        {"batch_size": 0},
        {"train_size": 10**7},
        {"model": "resnet"},
        {"optimizer": "lbfgs"},
        {"seed": -1},
        {"momentum": 2.0},
        {"schedule": "cosine"},
        {"size": -4},
        {"epochs": True},
        {"crop": 5},
        {"crop": -1},
        {"model": "mlp", "crop": 2},
    ],
)
def test_config_refuses_bad_values(changes):
    with pytest.raises(ValueError):
        TrainConfig(**changes)


def test_config_counts_steps():
    config = TrainConfig(train_size=1000, batch_size=64, epochs=3)
    assert config.steps_per_epoch() == 16 and config.total_steps() == 48
    assert TrainConfig(max_steps=5).total_steps() == 5


def _small_run(config: TrainConfig, mnist_train, mnist_test):
    model = new_model(config)
    events = list(train.train(config, model, mnist_train, mnist_test.subset(500), torch.device("cpu")))
    return model, events


@pytest.mark.mnist
def test_loss_falls_and_accuracy_is_reported(mnist_train, mnist_test):
    config = TrainConfig(model="mlp", train_size=3000, epochs=2, batch_size=64, lr=2e-3, log_every=5)
    _, events = _small_run(config, mnist_train, mnist_test)
    assert all(isinstance(e, Progress) for e in events)
    assert [e.step for e in events] == sorted(e.step for e in events) and events[-1].step == config.total_steps()
    epoch_ends = [e for e in events if e.test_accuracy is not None]
    assert [e.epoch for e in epoch_ends] == [1, 2]
    assert events[0].loss > 1.0 > events[-1].loss  # starts near ln(10) = 2.3
    assert epoch_ends[-1].test_accuracy > 0.8
    assert all(e.samples_per_s > 0 and e.elapsed >= e.train_seconds > 0 for e in events)


@pytest.mark.mnist
@pytest.mark.parametrize("model_name, crop", [("mlp", 0), ("cnn", 2)])
def test_muon_learns_both_models(mnist_train, mnist_test, model_name, crop):
    config = TrainConfig(
        model=model_name,
        size=8,
        crop=crop,
        train_size=3000,
        epochs=1,
        batch_size=64,
        optimizer="muon",
        lr=0.05,
        schedule="onecycle",
        log_every=5,
    )
    model, events = _small_run(config, mnist_train, mnist_test)
    assert events[0].loss > 1.5 > events[-1].loss  # starts near ln(10) = 2.3
    assert events[-1].test_accuracy > 0.8
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.mnist
@pytest.mark.parametrize("model_name, augment", [("mlp", False), ("cnn", True)])
def test_seeded_runs_are_reproducible(mnist_train, mnist_test, model_name, augment):
    config = TrainConfig(
        model=model_name,
        size=8,
        train_size=600,
        epochs=1,
        batch_size=32,
        augment=augment,
        seed=7,
        optimizer="sgd",
        schedule="onecycle",
        lr=0.05,
    )
    a, events_a = _small_run(config, mnist_train, mnist_test)
    b, events_b = _small_run(config, mnist_train, mnist_test)
    c, _ = _small_run(TrainConfig(**{**config.__dict__, "seed": 8}), mnist_train, mnist_test)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert [e.loss for e in events_a] == [e.loss for e in events_b]
    first = next(iter(a.state_dict()))
    assert not torch.equal(a.state_dict()[first], c.state_dict()[first])  # another seed, other weights


@pytest.mark.mnist
def test_closing_the_generator_stops_training(mnist_train, mnist_test):
    config = TrainConfig(model="mlp", train_size=6400, epochs=3, batch_size=64, log_every=5)
    model = new_model(config)
    run = train.train(config, model, mnist_train, mnist_test.subset(500), torch.device("cpu"))
    first = [next(run) for _ in range(3)]
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    run.close()
    assert first[-1].step == 15
    assert next(run, None) is None  # nothing more comes
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())  # and nothing more is learned


@pytest.mark.mnist
def test_max_steps_cuts_a_run_short_and_still_evaluates(mnist_train, mnist_test):
    config = TrainConfig(model="cnn", size=4, max_steps=7, log_every=3, batch_size=16)
    _, events = _small_run(config, mnist_train, mnist_test)
    assert [e.step for e in events] == [3, 6, 7] and events[-1].test_accuracy is not None


@pytest.mark.mnist
def test_train_and_evaluate_command_lines(tmp_path, capsys):
    out = tmp_path / "cnn.safetensors"
    assert (
        train.main(
            [
                "--model",
                "cnn",
                "--size",
                "4",
                "--max-steps",
                "6",
                "--batch-size",
                "32",
                "--seed",
                "5",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    meta = load_checkpoint(out).metadata
    assert meta["command"].endswith(f"--seed 5 --out {out}") and meta["seed"] == 5 and meta["steps"] == 6
    assert meta["config"]["model"] == "cnn" and 0 <= meta["test_accuracy"] <= 1
    capsys.readouterr()

    assert evaluate.main([str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 10_000 and math.isclose(report["accuracy"], meta["test_accuracy"], abs_tol=1e-6)
    assert sum(map(sum, report["confusion"])) == 10_000

    assert evaluate.main([str(out)]) == 0
    text = capsys.readouterr().out
    assert "MNIST test accuracy" in text and "true\\pred" in text


def test_command_lines_refuse_bad_input(tmp_path, capsys):
    assert train.main(["--lr", "nan"]) == 2
    assert "lr must be" in capsys.readouterr().err
    (tmp_path / "bad.safetensors").write_bytes(b"nonsense")
    assert evaluate.main([str(tmp_path / "bad.safetensors")]) == 2
    assert "not a safetensors file" in capsys.readouterr().err


@pytest.mark.parametrize("train_size", [640, 650])  # 10 steps at batch 64: a multiple of log_every 5, and not
def test_the_epoch_end_event_carries_the_epochs_last_losses(train_size):
    """Every event's loss is the mean of real steps: at an epoch end whose step count is a multiple of
    `log_every`, the event must not carry the 0.0 of a running sum that was just reset."""
    generator = torch.Generator().manual_seed(0)
    images = (torch.rand(train_size, 28, 28, generator=generator) * 255).to(torch.uint8)
    labels = torch.randint(0, 10, (train_size,), generator=generator)
    data = train.Split(images, labels)
    config = TrainConfig(model="mlp", size=8, epochs=2, batch_size=64, train_size=train_size, log_every=5)
    events = list(train.train(config, new_model(config), data, data.subset(64), torch.device("cpu")))
    ends = [e for e in events if e.test_accuracy is not None]
    assert len(ends) == 2 and all(e.loss > 0.5 for e in events), [(e.step, e.loss) for e in events]
    assert [e.step for e in ends] == [config.steps_per_epoch(train_size), config.total_steps(train_size)]
