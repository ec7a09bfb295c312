"""Shared fixtures. Tests that need real MNIST fail (never skip) when it cannot be found."""

from __future__ import annotations

import os

import pytest

from testkit.timing import one_torch_thread

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no version-check thread, no network


@pytest.fixture(scope="session")
def mnist_train():
    """The real MNIST training split (60,000 images); fails the test when MNIST is missing."""
    return _load(train=True)


@pytest.fixture(scope="session")
def mnist_test():
    """The real MNIST test split (10,000 images); fails the test when MNIST is missing."""
    return _load(train=False)


def _load(train: bool):
    from mnist_demo.data import MNISTNotFoundError, load_mnist

    try:
        return load_mnist(train=train)
    except MNISTNotFoundError as err:
        pytest.fail(f"this test needs the real MNIST (set MNIST_ROOT): {err}")


@pytest.fixture(scope="session")
def app_url():
    """The real app (app.py's `demo`), launched once on a free loopback port; its URL."""
    import app

    _, url, _ = app.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        yield url
    finally:
        app.demo.close()


@pytest.fixture(scope="session")
def models():
    """The shipped models behind the app's picker (no app is built)."""
    from ui.common import Models

    return Models.shipped()


@pytest.fixture
def one_thread():
    """One torch thread for the test, as the app gives each request (fine-tuning's budget is a few seconds
    on one thread; on a shared machine more threads only contend); the count is restored afterwards."""
    with one_torch_thread():
        yield


def pytest_collection_modifyitems(items):
    """A test that asks for a real MNIST split is an `mnist` test, marked or not."""
    for item in items:
        if {"mnist_train", "mnist_test"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.mnist)


@pytest.fixture(scope="module")
def browser():
    """One headless chromium per test module (Debian's, driven by Playwright); each test opens its own pages.
    Without it the browser tests skip, except in CI, which must run them."""
    from testkit.browser import chromium_missing, launch

    reason = chromium_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI runs the browser tests and must not skip them")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright  # after the check: a missing playwright only skips

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()
