"""ui/tempfiles.py: download files owned by their session, bounded per session, in total and in age.

python -m pytest tests/test_tempfiles.py
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import gradio as gr
import pytest

from mnist_demo.session import Run, Visitor
from testkit.sketches import draw, sketchpad
from ui.drawings import DrawingsHandlers
from ui.tempfiles import DELETE_CACHE, TempFiles
from ui.train import TrainHandlers


class Clock:
    """Wall-clock time plus an offset the test moves forward."""

    def __init__(self):
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def files_under(root) -> list:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def temp(tmp_path, clock):
    return TempFiles(tmp_path / "root", max_session_files=4, max_session_bytes=1000, max_total_bytes=2500, clock=clock)


def test_a_file_keeps_its_name_in_its_sessions_folder(temp):
    path = temp.write("session-a", "my-digits.zip", b"zip")
    assert path.name == "my-digits.zip" and path.read_bytes() == b"zip"
    assert temp.folder("session-a") in path.parents and temp.folder("session-b") not in path.parents
    temp.remove("session-a")
    assert files_under(temp.root) == [] and list(temp.root.iterdir()) == []


def test_sixty_stops_leave_at_most_a_few_files(temp):
    """Each Stop and each export left a new temporary folder for good: 60 calls, 60 folders."""
    for i in range(60):
        temp.write("visitor", "mnist-demo-cnn.safetensors", bytes([i]) * 10)
    kept = files_under(temp.root)
    assert {p.read_bytes() for p in kept} == {bytes([i]) * 10 for i in range(56, 60)}  # the newest four
    assert len(list(temp.folder("visitor").iterdir())) == 4  # emptied subfolders are removed too


def test_a_session_keeps_its_newest_files_within_its_bytes(temp):
    temp.write("visitor", "old.bin", b"o" * 600)
    temp.write("visitor", "new.bin", b"n" * 600)
    assert [p.name for p in files_under(temp.root)] == ["new.bin"]
    with pytest.raises(ValueError, match="at most"):
        temp.write("visitor", "huge.bin", b"h" * 1001)


def test_old_files_are_swept(temp, clock):
    temp.write("gone-quiet", "a.zip", b"a")
    clock.offset = temp.max_age_s + 1
    temp.write("active", "b.zip", b"b")  # every write sweeps first
    assert [p.name for p in files_under(temp.root)] == ["b.zip"]
    assert not temp.folder("gone-quiet").exists()
    clock.offset = 2 * temp.max_age_s + 2
    temp.sweep()
    assert files_under(temp.root) == []


def test_the_total_is_capped_least_recently_written_sessions_first(temp):
    for name in ("first", "second", "third"):
        temp.write(name, "w.bin", b"x" * 900)
        time.sleep(0.01)
    assert temp.total_bytes() <= 2500
    assert not temp.folder("first").exists() and temp.folder("third").exists()


@pytest.mark.parametrize("session", ["../../etc", "/etc/passwd", "a" * 10_000, ""])
def test_session_strings_never_become_paths(temp, session):
    path = temp.write(session, "x.bin", b"x")
    assert temp.root in path.parents and len(path.relative_to(temp.root).parts) == 3


@pytest.mark.parametrize("name", ["../../escape.bin", "/etc/passwd"])
def test_file_names_stay_inside_the_folder(temp, name):
    path = temp.write("s", name, b"x")
    assert temp.folder("s") in path.parents and path.name == os.path.basename(name)


def test_close_removes_everything(temp):
    temp.write("s", "x.bin", b"x")
    temp.close()
    assert not temp.root.exists()


# --------------------------------------------------------------------------------------------------
# The app's handlers write through TempFiles: weights after Stop and after a run, drawing archives.


def mnist_demo_folders() -> set:
    """Folders the app's temporary files could leave in the system's temporary folder."""
    return {p for p in Path(tempfile.gettempdir()).glob("mnist-demo-*") if p.is_dir()}


def test_sixty_stops_and_exports_leave_a_bounded_number_of_files(models, tmp_path):
    """Every Stop and every export made a new temporary folder, never removed (60 calls, 60 folders)."""
    files = TempFiles(tmp_path / "root")
    trainer, drawings = TrainHandlers(models, files), DrawingsHandlers(models, files)
    visitor = Visitor()
    visitor.drawings.add(sketchpad(draw("3")), 3)
    request = gr.Request(session_hash="visitor")
    before = mnist_demo_folders()
    for _ in range(60):
        visitor.run = Run(model_key=visitor.adopt(models.pick("cnn", None), "test"), epochs=1)
        status, download = trainer.stopped(visitor, request)
        assert status.startswith("stopped · your model") and Path(download["value"]).is_file()
        assert Path(drawings.export(visitor, request)["value"]).name == "my-digits.zip"
    assert mnist_demo_folders() == before  # nothing outside the app's own folder
    kept = files_under(files.folder("visitor"))
    assert len(kept) == files.max_session_files and Path(download["value"]) in kept  # the newest stay
    files.remove("visitor")  # what the app's unload does
    assert files_under(files.root) == []


def test_the_app_removes_a_sessions_files_when_it_closes_and_when_it_is_dropped():
    import app

    unload = [d for d in app.demo.config["dependencies"] if any(t[1] == "unload" for t in d["targets"])]
    assert len(unload) == 1 and app.demo.fns[unload[0]["id"]].fn is app.forget_files
    assert app.FILES.remove in app.KEEPER.on_drop
    assert app.demo.delete_cache == DELETE_CACHE  # Gradio's copies and uploads, after the same age
