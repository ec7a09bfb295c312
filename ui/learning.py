"""The Train tab's "watch it learn" section: the map of digits and the first layer, before training and after
every epoch, a replay of them, and the confusion heatmap whose cells show their test digits.

The frames come with the run's updates (`runs.RunUpdate.frame`, computed where the run is, so a run in
a ZeroGPU worker brings them along); `mnist_demo.learning.Watch`, kept per visitor in a gr.State, turns
them into pictures. `TrainHandlers.train` calls `frame_outputs` with each update.

    python -m pytest tests/test_learning.py
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import gradio as gr

from mnist_demo.atlas import hint
from mnist_demo.learning import Watch
from mnist_demo.runs import RunUpdate
from ui.common import QUIET, Page

ANCHOR = "watch-it-learn"  # the Guide links to these ids
HEATMAP_ANCHOR = "confusion-heatmap"
PLAY_EVERY_S = 0.8  # between two frames of a replay
MAP_HELP = (
    "**The map of digits**, as in the Draw tab, for the network you are training: 2,000 MNIST test digits placed "
    "by what it computes before its last layer, coloured by their true digit (squares: your own drawings). "
    "It is redrawn on the same axes before training and after every epoch: watch the colours gather into "
    "clusters as the network learns to tell the digits apart."
)
LAYER_HELP = (
    "**The first layer.** For the MLP, each tile is one hidden unit's 784 weights as a 28x28 picture (red "
    "positive, blue negative): noise before training, then strokes and parts of digits. For the CNN, what each "
    "first-layer filter picks out of the drawing you watch (red: its pattern, blue: its opposite), or the 3x3 "
    "filters themselves when you watch none."
)
HEATMAP_HELP = (
    "**The confusion heatmap.** Rows are the true digit, columns what the model said, over the 10,000 test "
    "digits: the green diagonal counts right answers, red cells mistakes (darker: more). Click a cell to see "
    "its test digits below."
)
MISTAKES_LABEL = "Test digits it got wrong (true → said)"


class LearningHandlers:
    """The section's pictures for a run's updates, the replay, and the heatmap's cells."""

    @staticmethod
    def frame_outputs(watch: Watch, update: RunUpdate) -> list:
        """The map, the first layer, the caption and the replay slider for `update` (skips without a frame).

        A frame that comes with its epoch's model is hinted to that model, so the Draw tab's map of the
        visitor's new model is this frame, turned the same way."""
        if update.frame is None:
            return [gr.skip()] * 4
        i = watch.add(update.frame)
        if update.checkpoint is not None:
            frame = update.frame
            hint(update.checkpoint.model, frame.projection, frame.points, frame.separation)
        drawn, layer = watch.pictures(i)
        return [drawn, layer, watch.caption(i), gr.Slider(maximum=max(1, i), value=i, interactive=i > 0)]

    @staticmethod
    def show(epoch, watch: Watch):
        """Frame `epoch` of the last run: its map, first layer and caption."""
        if not watch.frames:
            return gr.skip(), gr.skip(), "Train a model to watch it learn."
        i = min(max(int(epoch), 0), len(watch.frames) - 1)
        return *watch.pictures(i), watch.caption(i)

    @staticmethod
    async def play(watch: Watch):
        """Every frame of the last run in turn; the slider follows."""
        if not watch.frames:
            yield gr.skip(), gr.skip(), "Train a model to watch it learn.", gr.skip()
            return
        for i in range(len(watch.frames)):
            drawn, layer = await asyncio.to_thread(watch.pictures, i)  # drawing a frame is CPU work
            yield drawn, layer, watch.caption(i), i
            await asyncio.sleep(PLAY_EVERY_S)

    @staticmethod
    def cell(watch: Watch, event: gr.SelectData):
        """The clicked heatmap cell outlined, and its test digits in the gallery."""
        found = watch.cell(*event.index)
        if found is None:
            return gr.skip(), gr.skip()
        picture, tiles, label = found
        return picture, gr.Gallery(value=tiles, label=f"Test digits: {label} (true → said)")


@dataclass(frozen=True)
class LearningSection:
    """The section's components."""

    watch: gr.State  # a `learning.Watch` per visitor
    map: gr.Image
    layer: gr.Image
    caption: gr.Markdown
    epoch: gr.Slider
    heatmap: gr.Image

    @property
    def outputs(self) -> list:
        """What each update of a run changes (`LearningHandlers.frame_outputs`' order)."""
        return [self.map, self.layer, self.caption, self.epoch]

    def connect(self, mistakes: gr.Gallery) -> None:
        """A clicked heatmap cell shows its test digits in `mistakes`."""
        self.heatmap.select(LearningHandlers.cell, self.watch, [self.heatmap, mistakes], **QUIET)


def build_learning_section(page: Page) -> LearningSection:
    """The section's layout (inside the Train tab, under the plots) and its replay events."""
    watch = gr.State(Watch())
    with gr.Column(elem_id=ANCHOR):
        gr.Markdown("### Watch it learn")
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                drawn = gr.Image(label="The map of digits", interactive=False, elem_id="train-map", buttons=[])
                gr.Markdown(MAP_HELP)
            with gr.Column(scale=1, min_width=300):
                layer = gr.Image(label="The first layer", interactive=False, elem_id="train-layer", buttons=[])
                gr.Markdown(LAYER_HELP)
        caption = gr.Markdown("Train a model to watch it learn.", elem_id="train-caption")
        with gr.Row():
            epoch = gr.Slider(
                0, 1, value=0, step=1, label="Epoch (0: before training)", interactive=False, elem_id="replay", scale=4
            )
            play = gr.Button("Play", elem_id="play", scale=1, min_width=80)
    with gr.Column(elem_id=HEATMAP_ANCHOR):
        heatmap = gr.Image(
            label="Confusion heatmap on the 10,000 test digits (row: true digit, column: what the model said)",
            interactive=False,
            elem_id="confusion",
            buttons=[],
        )
        gr.Markdown(HEATMAP_HELP)
    h = LearningHandlers()
    epoch.input(h.show, [epoch, watch], [drawn, layer, caption], trigger_mode="always_last", **QUIET)
    play.click(h.play, watch, [drawn, layer, caption, epoch], concurrency_limit=None, **QUIET)
    return LearningSection(watch, drawn, layer, caption, epoch, heatmap)
