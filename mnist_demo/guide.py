"""The Guide tab's text: the beginner guide's steps, each with the code this app really runs.

The code blocks are read from the package's source with `inspect`, so the page cannot drift from what
trains the models. The guide's bugs are listed with their fixes.

    python -c "from mnist_demo.guide import guide_markdown; print(guide_markdown())"
"""

from __future__ import annotations

import inspect
import textwrap

from mnist_demo import data, models, train

# Each bug of the original guide, what it breaks, and the fix this app makes.
BUGS = [
    (
        "`nn.Linear(28, 28)` as the first layer, images never flattened",
        "an image is 1x28x28, so the layer runs on each 28-pixel row and the output shape no longer matches the labels",
        "`nn.Flatten()` then `nn.Linear(784, hidden)` (see `GuideMLP`)",
    ),
    (
        "`datasets.FashionMNIST` loaded",
        "the text is about handwritten digits; FashionMNIST is clothing",
        "MNIST, read once into memory (`load_mnist`)",
    ),
    ("`loss.backwards()`", "no such method: the run stops with an `AttributeError`", "`loss.backward()`"),
    ("`model` never created", "`model.parameters()` fails with a `NameError`", "`model = new_model(config)`"),
    ("`optim` never imported", "`optim.Adam` fails with a `NameError`", "`torch.optim.Adam` (see `make_optimizer`)"),
    (
        "no evaluation at all",
        "nobody knows whether it learned; no `model.eval()` or `torch.no_grad()`",
        "test accuracy after every epoch (`accuracy`, under `torch.no_grad()`)",
    ),
    (
        "no normalisation, only `ToTensor()`",
        "inputs are not centred, which slows learning",
        "subtract `MNIST_MEAN`, divide by `MNIST_STD` (`normalize`)",
    ),
    (
        "`lr=0.01` for Adam",
        "too high for this network: the loss keeps bouncing; about 95% test accuracy",
        "0.001-0.002, or a one-cycle schedule: 96.4% and 96.9% for the same network, 5 epochs each",
    ),
    (
        '"zero_grad stores the gradients"',
        "it clears them: `backward()` adds to `.grad`, so old gradients would pile up",
        "the comment in our loop says what it does",
    ),
    (
        '"backwards() comes from nn.Module"',
        "`backward` is autograd on the loss tensor, not a module method",
        "explained in step 4 below",
    ),
]


def in_page(text: str, tab: str, anchor: str) -> str:
    """A Markdown link to the section `anchor` (an element id) of the app's tab `tab`; the page opens the tab
    and scrolls there (mnist_demo/web/links.js). tests/test_guide.py checks every one against the app."""
    return f"[{text}](#{tab.lower().replace(' ', '-')}:{anchor})"


def source(obj: object) -> str:
    """The source code of a function or class, dedented, as a fenced Python block."""
    return "```python\n" + textwrap.dedent(inspect.getsource(obj)).rstrip() + "\n```"


def constants() -> str:
    names = ["IMAGE_SIZE", "NUM_CLASSES", "MNIST_MEAN", "MNIST_STD"]
    return "```python\n" + "\n".join(f"{n} = {getattr(data, n)!r}" for n in names) + "\n```"


def guide_markdown(accuracy: dict[str, float] | None = None) -> str:
    """The whole Guide tab as Markdown; `accuracy` holds the shipped models' MNIST test accuracies by name."""
    accuracy = accuracy or {}
    cnn, guide = (f"{accuracy[n]:.2%}" if n in accuracy else "(not measured)" for n in ("cnn", "mlp-guide"))
    bug_rows = "\n".join(f"| {bug} | {why} | {fix} |" for bug, why, fix in BUGS)
    map_link = in_page("map of digits", "Draw", "map-of-digits")
    watch_link = in_page("the map of digits and the first layer", "Train", "watch-it-learn")
    heatmap_link = in_page("a heatmap of its mistakes", "Train", "confusion-heatmap")
    return f"""
## The guide, fixed: the code this app runs

This demo grows from a beginner's post, *PyTorch Guide: an adequate guide to becoming adequate with
PyTorch*: an MLP on MNIST with ReLU, cross-entropy, `Adam(lr=0.01)`, batches of 64 and 5 epochs. Its code
did not run. Below are its steps with the code that actually trains the models in the Train tab,
read from this app's source as it runs.

### What was broken, and the fix

| the guide | what goes wrong | the fix here |
|---|---|---|
{bug_rows}

### 1. The model: an `nn.Module`

`__init__` creates the layers; `forward` says how data flows through them. It returns raw scores
(logits): `cross_entropy` applies the softmax itself, and the Draw tab applies it only to show
probabilities. What the last layer reads, the hidden units' values, is what the Draw tab's
{map_link} shows: each test digit placed by those values, your drawing among them.

{source(models.GuideMLP)}

### 2. The data, loaded once into memory

The four MNIST files are read once into uint8 tensors; batches are cut from memory with a seeded
generator, so no per-image conversion runs in the loop. Pixels are normalised with MNIST's own mean
and standard deviation, the same numbers the Draw tab uses on your sketch.

{constants()}

{source(data.batches)}

{source(data.normalize)}

### 3. Loss and optimizer

Ten classes means a multi-class problem, so the loss is cross-entropy (`F.cross_entropy` in the loop).
The optimizer is the guide's Adam, SGD with momentum, or Muon. Muon is a newer optimizer that turns
each layer's update into an orthogonal matrix (every direction moves by the same amount), which trains
the CNN to 99% in fewer steps; the Train tab offers Adam and SGD.

{source(train.make_optimizer)}

### 4. The loop

For each batch: forward pass, loss, `optimizer.zero_grad()` (clears the gradients the last step left
in `.grad`; `backward` adds to them), `loss.backward()` (autograd computes the gradient of the loss
with respect to every parameter), `optimizer.step()` (moves each parameter against its gradient).
After each epoch the model is evaluated on the 10,000 test images it never trained on. The loop is a
generator: the command line prints what it yields, this app plots it, and Stop closes it.

The Train tab shows more of a run than its loss and accuracy: {watch_link}, before training and
after every epoch, so you can watch the digits separate and the filters form from noise; and once the
run ends, {heatmap_link} (the confusion matrix: true digit by row, answer by column), whose cells open
onto the test digits behind each count.

Two lines are about speed, not learning. `memory_format` stores the CNN's images channel by channel
for each pixel ("channels-last"), the layout the CPU's convolution kernels run fastest on. `autocast`
(off unless asked for) computes in 16-bit bfloat16 where that is safe, which is faster on GPUs and on
CPUs with bfloat16 units.

{source(train.train)}

### 5. Beyond the guide: the CNN

The guide's MLP sees an image as 784 unrelated numbers. A convolutional network slides small 3x3
filters over the image instead, so a stroke is recognised wherever it is, and each pooling step halves
the picture while the next layer looks at a wider area. This small CNN is the app's default: {cnn}
on the test set against the guide's {guide}, with about as many parameters as a 128-unit MLP.

{source(models.conv_block)}

{source(models.SmallCNN)}
"""
