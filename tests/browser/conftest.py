"""Browser fixtures: a fake Gemini server, a real JupyterLab whose kernels talk to it, Chromium pages.

    def test_something(lab, lab_page):
        lab.write_notebook("t.ipynb", ["%load_ext agy_jupyter", "%%chat\\nhi"])
        lab_page.open("t.ipynb")
        lab_page.run_cell(0)
        ...
        assert lab_page.foreign_requests == [] and lab_page.dialogs == []

`fake_gemini` is the FakeGemini the kernels reach (script it with `enqueue` or `default`), `lab` the
`LabServer`, `lab_page` a fresh `LabPage` per test (its own browser context). The server and the browser
are started once per session. Skipped only when Playwright or /usr/bin/chromium is missing.
"""
from __future__ import annotations

import os
import shutil

import pytest

from agy_jupyter.testing import FakeGemini

from lab_page import LabPage
from lab_server import LabServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 900}
KERNEL_ENV = {"AGY_CHAT_TIMEOUT_SECS": "30"}  # a wedged reply fails fast instead of after 120 s


def _sync_playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (Debian: apt-get install chromium; .ci/run does it)")
    return sync_playwright


@pytest.fixture(scope="session")
def fake_gemini():
    with FakeGemini() as server:
        yield server


@pytest.fixture(scope="session")
def lab(fake_gemini, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("lab")
    server = LabServer(workdir, env={**fake_gemini.env(), **KERNEL_ENV})
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def chromium():
    """Per module: while Playwright's sync API runs, this thread has a running asyncio loop, and every
    async test after it (pytest-asyncio's Runner) would fail with "cannot be called from a running event loop"."""
    sync_playwright = _sync_playwright()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def lab_context(chromium):
    """A fresh browser context (cookies, storage); add init scripts to it before `lab_page` opens a page."""
    context = chromium.new_context(viewport=VIEWPORT)
    yield context
    context.close()


@pytest.fixture
def lab_page(lab, lab_context, fake_gemini):
    """A `LabPage` (no notebook open yet); the fake server's queue is empty and its default restored after."""
    fake_gemini.reset()
    default = fake_gemini.default
    yield LabPage(lab_context, lab)
    fake_gemini.default = default
    fake_gemini.reset()
