"""One visitor's session: the models they made, in order, with what made each, and their own drawings.

The app keeps a `Visitor` in `gr.State`, so nobody else sees or replaces what is in it. Every new model
(trained, fine-tuned or loaded from a file) enters through `Visitor.adopt`, which keeps the history in
order and bounded; a training run adopts its first epoch's model and replaces that entry at each later
epoch, so one run is one entry. Nothing here imports Gradio.

    python -m pytest tests/test_session.py
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mnist_demo.checkpoint import Checkpoint
from mnist_demo.personal import PersonalSet

MAX_OWN_MODELS = 5  # models kept per visitor; the oldest goes first (a 1,024-wide MLP is 3 MB)
OWN_PREFIX = "yours-"  # an own model's key is OWN_PREFIX + a number that is never reused in the session
LATEST = "yours"  # the key that always means the visitor's newest model (what scripts pass to /predict)


@dataclass(frozen=True)
class OwnModel:
    """A model the visitor made, and how."""

    key: str  # stable while kept: the model picker's value
    number: int  # 1 for the session's first model, 2 for the next, ...
    checkpoint: Checkpoint  # evaluated, frozen, on the CPU
    origin: str  # what made it, for people: "trained: CNN, 16 channels, 2 epochs"


@dataclass
class Run:
    """A training run of the visitor's that has not ended, for Stop to say what it kept."""

    model_key: str | None = None  # the model its finished epochs made, once one has
    epochs: int = 0  # epochs finished


@dataclass
class Visitor:
    """One visitor's own things."""

    models: list[OwnModel] = field(default_factory=list)  # oldest first, at most MAX_OWN_MODELS
    drawings: PersonalSet = field(default_factory=PersonalSet)  # the digits they drew and labelled
    made: int = 0  # models adopted so far, the source of each new key's number
    run: Run | None = None  # their training run under way, if any

    def adopt(self, checkpoint: Checkpoint, origin: str, replace: str | None = None) -> str:
        """Keep `checkpoint` as the visitor's newest model, or as the new state of the model `replace`; its key.

        `replace` names an entry of this session (a run's earlier epoch); if it was dropped meanwhile, the
        checkpoint enters as a new model.
        """
        for i, own in enumerate(self.models):
            if own.key == replace:
                self.models[i] = OwnModel(own.key, own.number, checkpoint, origin)
                return own.key
        self.made += 1
        own = OwnModel(f"{OWN_PREFIX}{self.made}", self.made, checkpoint, origin)
        self.models = [*self.models, own][-MAX_OWN_MODELS:]
        return own.key

    def model(self, key: str) -> OwnModel | None:
        """The own model with this key (`LATEST` for the newest), or None."""
        if key == LATEST:
            return self.models[-1] if self.models else None
        return next((own for own in self.models if own.key == key), None)

    @property
    def latest(self) -> OwnModel | None:
        return self.model(LATEST)


def is_own(key: object) -> bool:
    """Does a picker value name one of the visitor's own models (rather than a shipped one)?"""
    return isinstance(key, str) and (key == LATEST or key.startswith(OWN_PREFIX))
