"""Training: the config, the loop (a generator of progress events), and the command line.

The loop is the guide's loop, fixed and made fast: batches come from uint8 tensors in memory (on the
GPU when training there), the CNN runs channels-last, and every `log_every` steps it yields a small
`Progress` event. The command line prints those events as a progress bar; the app plots them. Closing
the generator stops training between two steps. Under torchrun the same loop runs in every process,
each on its share of every global batch (mnist_demo/distributed.py).

    python -m mnist_demo.train --model mlp --out weights/mlp-guide.safetensors     # the guide, fixed
    python -m mnist_demo.train --model cnn --epochs 2 --out /tmp/cnn.safetensors
    torchrun --nproc_per_node 2 -m mnist_demo.train --model cnn --epochs 2 --out /tmp/cnn.safetensors
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import os
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mnist_demo import distributed, worldstyles
from mnist_demo.checkpoint import CheckpointError, load_checkpoint, model_spec, save_checkpoint
from mnist_demo.data import MNIST_TRAIN_SIZE, MNISTNotFoundError, Split, augment, batches, load_mnist, normalize
from mnist_demo.metrics import accuracy
from mnist_demo.models import MAX_CROP, MAX_SIZE, MODELS, build_model
from mnist_demo.muon import Muon
from mnist_demo.outliers import outlier_images

OPTIMIZERS = ("adam", "sgd", "muon")
SCHEDULES = ("constant", "onecycle")
ONECYCLE_WARMUP = 0.25  # share of the steps spent raising the learning rate to its peak
ONECYCLE_MIN_STEPS = 8  # shorter runs (smoke tests) keep the rate constant: the schedule needs room to ramp
# oneDNN's convolutions train faster on CPU with channels-last weights and activations (the channels-last
# row of `python -m bench --only training` sets this back to contiguous to measure by how much).
CNN_MEMORY_FORMAT = torch.channels_last
# Outlier Exposure (Hendrycks et al. 2019): this many non-digits per digit in each batch, drawn from the
# run's pool, and their loss's weight beside the digits' (0.5 is the paper's for image classifiers).
OUTLIERS_PER_DIGIT = 0.25


def knob(default: Any, help: str) -> Any:
    """A config field whose help text is also the command line's."""
    return field(default=default, metadata={"help": help})


def range_problems(
    config: Any, integers: list[tuple[str, int, int]], numbers: list[tuple[str, float, float]]
) -> list[str]:
    """What is wrong with `config`'s fields named in (name, lo, hi) ranges, inclusive: integers, then numbers.

    NaN and infinities fail the range test, so no separate check is needed; bools are not numbers here.
    """
    problems = []
    for kinds, ranges, what in [((int,), integers, "an integer"), ((int, float), numbers, "a number")]:
        for name, lo, hi in ranges:
            value = getattr(config, name)
            if not isinstance(value, kinds) or isinstance(value, bool) or not lo <= value <= hi:
                problems.append(f"{name} must be {what} from {lo} to {hi}, got {value!r}")
    return problems


def add_config_options(parser: Any, config_class: type) -> None:
    """One argparse option per field of a dataclass built with `knob`, typed and defaulted from the field."""
    for f in fields(config_class):
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=f.metadata["help"])
        else:  # a field whose default is None is an optional number
            kind = float if f.default is None else type(f.default)
            parser.add_argument(flag, type=kind, default=f.default, help=f.metadata["help"] + " (default: %(default)s)")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run. The defaults are the guide's hyperparameters."""

    model: str = knob("mlp", "network: 'mlp' (the guide's) or 'cnn'")
    size: int = knob(0, "hidden units of the MLP or channels of the CNN's first block; 0 = the model's default")
    crop: int = knob(
        0,
        f"CNN only: border pixels dropped before the first convolution, 0 to {MAX_CROP} "
        "(2 keeps the central 24x24, where MNIST's digits are: see bench/train_speed.py --compare)",
    )
    epochs: int = knob(5, "passes over the training set")
    batch_size: int = knob(64, "images per optimizer step (under torchrun: all processes together)")
    lr: float = knob(0.01, "learning rate (the peak rate with the one-cycle schedule)")
    optimizer: str = knob(
        "adam",
        "'adam' (the guide's), 'sgd' (with Nesterov momentum) or 'muon' "
        "(orthogonalised momentum for the hidden layers, see mnist_demo/muon.py)",
    )
    momentum: float = knob(0.9, "SGD and Muon momentum")
    weight_decay: float = knob(0.0, "L2 penalty added by the optimizer")
    schedule: str = knob("constant", "'constant' (the guide's) or 'onecycle' (warm up, then anneal to zero)")
    label_smoothing: float = knob(0.0, "share of each target spread over the other classes")
    train_size: int = knob(MNIST_TRAIN_SIZE, "training images used, a seeded random subset when below 60,000")
    augment: bool = knob(False, "random affine and stroke-weight changes per batch, for drawn digits")
    styled: int = knob(
        0,
        "world-style digits added to the training set: MNIST 7s, 0s and 1s given a bar, slash or up-stroke, "
        "and handwriting-font digits (mnist_demo/worldstyles.py); 0 = none",
    )
    outliers: int = knob(
        0,
        "non-digits (letters, scribbles, shapes, crossings-out) drawn for Outlier Exposure, so that the model "
        "can say 'not a digit' (mnist_demo/outliers.py); 0 = none",
    )
    outlier_weight: float = knob(0.5, "weight of the non-digits' loss (cross-entropy to equal probabilities)")
    seed: int = knob(0, "seeds the weights, the subset, the shuffling and the augmentation")
    max_steps: int = knob(0, "stop after this many optimizer steps; 0 = no limit (tests use a few)")
    log_every: int = knob(10, "optimizer steps between progress events")
    bf16: bool = knob(False, "bfloat16 autocast (fast on GPUs and on CPUs with bf16 units; slow on others)")

    def __post_init__(self) -> None:
        problems = []
        if self.model not in MODELS:
            problems.append(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        problems += range_problems(
            self,
            integers=[
                ("size", 0, MAX_SIZE),
                ("crop", 0, MAX_CROP),
                ("epochs", 1, 1000),
                ("batch_size", 1, MNIST_TRAIN_SIZE),
                ("train_size", 1, MNIST_TRAIN_SIZE),
                ("styled", 0, MNIST_TRAIN_SIZE),
                ("outliers", 0, MNIST_TRAIN_SIZE),
                ("max_steps", 0, 10**9),
                ("log_every", 1, 10**6),
                ("seed", 0, 2**63 - 1),
            ],
            numbers=[
                ("lr", 0.0, 10.0),
                ("momentum", 0.0, 1.0),
                ("weight_decay", 0.0, 1.0),
                ("label_smoothing", 0.0, 1.0),
                ("outlier_weight", 0.0, 10.0),
            ],
        )
        if self.crop and self.model != "cnn":
            problems.append(f"only the CNN can crop its input, not the {self.model}")
        if self.lr == 0:
            problems.append("lr must be above 0")
        if problems:
            raise ValueError("; ".join(problems))

    def steps_per_epoch(self, available: int = MNIST_TRAIN_SIZE, processes: int = 1) -> int:
        """Optimizer steps per epoch when `available` training images exist (world-style digits besides); a
        last batch smaller than the number of `processes` cannot be shared out and is dropped."""
        full, rest = divmod(min(self.train_size, available) + self.styled, self.batch_size)
        return full + (rest >= processes)

    def total_steps(self, available: int = MNIST_TRAIN_SIZE, processes: int = 1) -> int:
        steps = self.epochs * self.steps_per_epoch(available, processes)
        return min(steps, self.max_steps) if self.max_steps else steps


@dataclass(frozen=True)
class Progress:
    """What the loop reports every `log_every` steps and at the end of each epoch."""

    step: int  # optimizer steps done
    total_steps: int  # steps the run will take
    epoch: int  # current epoch, from 1
    loss: float  # mean training loss since the previous event
    samples_per_s: float  # training throughput so far (evaluation time excluded)
    elapsed: float  # seconds since the run started, evaluation included
    train_seconds: float  # seconds spent in optimizer steps
    test_accuracy: float | None = None  # set at the end of each epoch (and of a run cut short by max_steps)

    @property
    def seconds_left(self) -> float:
        """Training time still to go at the current speed (evaluations not counted)."""
        return self.train_seconds / max(1, self.step) * (self.total_steps - self.step)


def pick_device(local_rank: int = 0) -> torch.device:
    """The GPU numbered `local_rank` on this machine when CUDA is present, else the CPU; chosen once and
    passed explicitly. (On a ZeroGPU Space call it only inside a `zerogpu.gpu` function: outside, the
    `spaces` package makes CUDA look present on a machine that has no GPU attached.)"""
    return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")


def clock(device: torch.device) -> float:
    """`time.perf_counter()` once `device` has done the work queued so far: GPU kernels run asynchronously,
    so without the wait a timer would stop before the work it times."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def new_model(config: TrainConfig) -> nn.Module:
    """The untrained model `config` asks for, its weights seeded by `config.seed`."""
    torch.manual_seed(config.seed)
    return build_model(config.model, config.size or None, config.crop)


def make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        # fused: one kernel for all parameters, which matters for small models with many small steps
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
    if config.optimizer == "muon":
        return Muon(model, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.momentum > 0,
        weight_decay=config.weight_decay,
    )


def make_schedule(
    config: TrainConfig, optimizer: torch.optim.Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    if config.schedule == "constant" or total_steps < ONECYCLE_MIN_STEPS:
        return None
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=total_steps, pct_start=ONECYCLE_WARMUP
    )


@torch.no_grad()
def blend(model: nn.Module, original: nn.Module, share: float) -> None:
    """Move `model`'s weights back towards `original`'s, keeping `share` of the change (BatchNorm's running
    statistics too; its step counter stays the trained one). WiSE-FT (Wortsman et al., 2022): most of
    what the change learned, less of what it forgot."""
    before = original.state_dict()
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            old = before[key].to(value.device, value.dtype)  # the original stays on the CPU when training is on a GPU
            value.copy_(old + share * (value - old))


def train(
    config: TrainConfig,
    model: nn.Module,
    train_data: Split | None = None,
    test_data: Split | None = None,
    device: torch.device | None = None,
    styled: Split | None = None,
    outliers: torch.Tensor | None = None,
) -> Iterator[Progress]:
    """Train `model` in place, yielding `Progress`; MNIST is loaded when no data is given.

    Both splits are copied to `device` once, so that batches are cut where the images already are. Under
    torchrun (a process group in force) each process trains on its share of every global batch of
    `config.batch_size` and only rank 0 evaluates; the others' epoch-end events carry no accuracy.

    `styled` (world-style digits) and `outliers` (non-digits, (N, 28, 28) uint8) are drawn as the config
    asks when not given; drawing them takes a few milliseconds each, before the first step.
    Timing: `train_seconds` counts batching and optimizer steps, not evaluation and not the time the
    consumer spends between our yields (drawing a plot, say).
    """
    device = device or pick_device()
    world = distributed.current()
    generator = torch.Generator().manual_seed(config.seed)  # subset, shuffling and augmentation: same on every rank
    train_data = (load_mnist(train=True) if train_data is None else train_data).to(device)
    test_data = (load_mnist(train=False) if test_data is None else test_data).to(device)
    # A seeded random subset, kept as indices so the shared uint8 images are never copied.
    available = len(train_data)
    subset = (
        torch.randperm(available, generator=generator)[: config.train_size] if config.train_size < available else None
    )
    if config.styled:
        styled = worldstyles.styled_digits(config.styled, config.seed, train_data) if styled is None else styled
        styled = styled.subset(config.styled)
        train_data = Split(torch.cat([train_data.images, styled.images]), torch.cat([train_data.labels, styled.labels]))
        if subset is not None:  # every styled digit is in every epoch, whatever the subset of MNIST
            subset = torch.cat([subset, torch.arange(available, len(train_data))])
    if config.outliers:
        outliers = outlier_images(config.outliers, config.seed) if outliers is None else outliers[: config.outliers]
    memory_format = CNN_MEMORY_FORMAT if config.model == "cnn" else torch.contiguous_format
    model.to(device, memory_format=memory_format)
    net = distributed.wrap(model, device)  # the model itself, or DDP around it: same parameters
    total = config.total_steps(available, world.size)
    per_epoch = config.steps_per_epoch(available, world.size)
    optimizer = make_optimizer(config, model)
    schedule = make_schedule(config, optimizer, total)

    step, seen, train_seconds = 0, 0, 0.0
    loss_sum, loss_steps = torch.zeros((), device=device), 0  # summed on the device: one sync per event
    start = mark = clock(device)

    def progress(epoch: int, test_accuracy: float | None = None) -> Progress:
        return Progress(
            step,
            total,
            epoch,
            (distributed.average(loss_sum) / max(1, loss_steps)).item(),
            seen / max(train_seconds, 1e-9),
            time.perf_counter() - start,
            train_seconds,
            test_accuracy,
        )

    for epoch in range(1, config.epochs + 1):
        model.train()
        for batch, (images, labels) in enumerate(batches(train_data, config.batch_size, generator, device, subset), 1):
            if len(labels) < world.size:
                break  # a last batch too small to share out, dropped on every rank alike
            digits = len(labels)
            if config.outliers:  # non-digits ride along in the same forward pass, after the digits
                pick = torch.randint(len(outliers), (math.ceil(OUTLIERS_PER_DIGIT * digits),), generator=generator)
                images = torch.cat([images, outliers[pick].to(device)])
            x = images.unsqueeze(1).float() / 255  # (B, 1, 28, 28) in [0, 1]
            if config.augment:
                x = augment(x, generator)  # the whole global batch on every rank: keeps the generators in step
            # This process's rows of the global batch (all of them in one process): its share of the digits
            # and its share of the non-digits behind them.
            mine, odd = world.share(digits), world.share(len(x) - digits)
            x = torch.cat([x[mine], x[digits + odd.start : digits + odd.stop]])
            x = normalize(x).contiguous(memory_format=memory_format)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16):
                logits = net(x)
                own = mine.stop - mine.start
                summed = F.cross_entropy(
                    logits[:own], labels[mine], reduction="sum", label_smoothing=config.label_smoothing
                )
                # This share's part of the global batch's mean loss, times the number of processes: DDP
                # averages the processes' gradients, which then make the gradient of the global batch's
                # mean loss (with one process: the mean itself).
                loss = summed * world.size / digits
                if config.outliers:  # cross-entropy to the uniform distribution: no digit is likelier
                    uniform = -logits[own:].float().log_softmax(dim=1).mean(dim=1).sum()
                    loss = loss + config.outlier_weight * uniform * world.size / (len(images) - digits)
            optimizer.zero_grad(set_to_none=True)  # clears last step's gradients: backward() adds to .grad
            loss.backward()  # autograd fills each parameter's .grad (DDP: averaged over the processes)
            optimizer.step()
            if schedule is not None:
                schedule.step()
            loss_sum += loss.detach()
            step, seen, loss_steps = step + 1, seen + len(labels), loss_steps + 1
            if step >= total:
                break
            # The epoch's last batch is reported by the epoch-end event below, with these losses in it.
            if loss_steps == config.log_every and batch < per_epoch:
                train_seconds += clock(device) - mark
                yield progress(epoch)
                loss_sum.zero_()
                loss_steps, mark = 0, clock(device)
        train_seconds += clock(device) - mark
        evaluate = len(test_data) and world.is_main
        yield progress(epoch, accuracy(model, test_data, device) if evaluate else None)
        loss_sum.zero_()
        loss_steps, mark = 0, clock(device)
        if step >= total:
            break
    model.eval()


# ---------------------------------------------------------------------------------------------------
# Command line


def config_parser() -> Any:
    """An argparse parser with one option per `TrainConfig` field, defaults read from the dataclass."""
    parser = argparse.ArgumentParser(prog="python -m mnist_demo.train", description="Train a model on MNIST.")
    add_config_options(parser, TrainConfig)
    parser.add_argument("--out", help="write the trained model here (.safetensors, plus a .json beside it)")
    parser.add_argument(
        "--init",
        metavar="CHECKPOINT",
        help="start from this checkpoint's weights instead of random ones (its model, size and crop must match)",
    )
    parser.add_argument(
        "--keep",
        type=float,
        default=1.0,
        help="with --init: keep this share of the change from its weights, blending back the rest (WiSE-FT); "
        "the test accuracy is measured after (default: %(default)s, all of it)",
    )
    return parser


def launch_command(world: distributed.World, argv: list[str]) -> str:
    """The command that ran this training, for the checkpoint's metadata."""
    if world.size == 1:
        return "python -m mnist_demo.train " + shlex.join(argv)
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", world.size))
    nodes = world.size // per_node
    return f"torchrun --nnodes {nodes} --nproc_per_node {per_node} -m mnist_demo.train " + shlex.join(argv)


def initial_model(config: TrainConfig, init: str | None) -> tuple[nn.Module, dict[str, Any]]:
    """The model to train (new, or a checkpoint's to continue from) and what to record about where it started."""
    if not init:
        return new_model(config), {}
    checkpoint = load_checkpoint(init)
    found, wanted = model_spec(checkpoint.model), (config.model, config.size or None, config.crop)
    if found[0] != wanted[0] or found[2] != wanted[2] or (wanted[1] is not None and found[1] != wanted[1]):
        raise ValueError(f"{init} holds a {found[0]} of size {found[1]}, crop {found[2]}; the config asks for {wanted}")
    for p in checkpoint.model.parameters():
        p.requires_grad_(True)
    start = {k: checkpoint.metadata.get(k) for k in ("command", "test_accuracy", "train_seconds", "steps")}
    return checkpoint.model, {"init": {"path": init, **start}}


def main(argv: list[str] | None = None) -> int:
    """The command line; under torchrun only rank 0 prints, evaluates and saves."""
    from tqdm import tqdm

    argv = sys.argv[1:] if argv is None else argv
    args = vars(config_parser().parse_args(argv))
    out, init, keep = args.pop("out"), args.pop("init"), args.pop("keep")
    try:
        config = TrainConfig(**args)
        world = distributed.from_env()
        if not 0 < keep <= 1 or (keep < 1 and not init):
            raise ValueError("--keep must lie in (0, 1], and below 1 only with --init")
        model, started = initial_model(config, init)
    except (ValueError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    start_weights = copy.deepcopy(model) if keep < 1 else None
    device = pick_device(world.local_rank)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # every batch has the same shape: time cuDNN's algorithms once
    if world.is_main:
        processes = f", {world.size} processes" if world.size > 1 else ""
        print(f"training {config.model} on {device} ({torch.get_num_threads()} threads{processes}): {config}")

    last: Progress | None = None
    try:
        with (
            distributed.process_group(world, device),
            tqdm(
                total=config.total_steps(processes=world.size),
                unit="step",
                dynamic_ncols=True,
                mininterval=0.5,
                disable=not world.is_main,
            ) as bar,
        ):
            for event in train(config, model, device=device):
                bar.set_postfix(
                    epoch=event.epoch, loss=f"{event.loss:.4f}", img_s=f"{event.samples_per_s:,.0f}", refresh=False
                )
                bar.update(event.step - bar.n)
                if event.test_accuracy is not None:  # rank 0 alone evaluates
                    bar.write(
                        f"epoch {event.epoch}: test accuracy {event.test_accuracy * 100:.2f}% "
                        f"after {event.train_seconds:.1f} s of training"
                    )
                last = event
    except MNISTNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not world.is_main:
        return 0
    if start_weights is not None:
        blend(model, start_weights, keep)
        last = dataclasses.replace(last, test_accuracy=accuracy(model, load_mnist(train=False), device))
        started["init"]["keep"] = keep
        print(f"kept {keep:.0%} of the change from {init}: test accuracy {last.test_accuracy * 100:.2f}%")
    print(
        f"done: test accuracy {last.test_accuracy * 100:.2f}%, {last.train_seconds:.1f} s training, "
        f"{last.elapsed:.1f} s in all, {last.samples_per_s:,.0f} images/s"
    )
    if out:
        save_checkpoint(
            out,
            model,
            config=config.__dict__,
            test_accuracy=last.test_accuracy,
            command=launch_command(world, argv),
            seed=config.seed,
            train_seconds=round(last.train_seconds, 2),
            steps=last.step,
            hardware={"device": str(device), "torch_threads": torch.get_num_threads(), "processes": world.size},
            **started,
        )
        print(f"saved {out}")
    return 0


if __name__ == "__main__":
    # `record` hands an exception's traceback to torchrun, which then names the failed rank and its error.
    from torch.distributed.elastic.multiprocessing.errors import record

    sys.exit(record(main)())
