"""The widgets' front end: the JS unit tests pass under node, and each widget ships its bundle."""
from __future__ import annotations

import pathlib
import shutil
import subprocess
import threading

import pytest

from agy_jupyter.notebook import widgets
from agy_jupyter.notebook.widgets import STATIC_DIR, ApprovalView, AssetsWidget, StreamView, UsageView, ensure_assets

LABEXTENSION = pathlib.Path(__file__).resolve().parent.parent / "labextension"
BUNDLES = {StreamView: "stream_view.js", ApprovalView: "approval_view.js", UsageView: "usage_view.js",
           AssetsWidget: "agy_assets.js"}
HEAVY_LIBRARIES = ("DOMPurify", "marked", "hljs")  # names that survive minification in their bundles


@pytest.mark.timeout(300)
def test_js_unit_tests_pass():
    """`npm test` rebuilds the bundles and runs labextension/test/*.test.mjs with node --test."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm is not installed: the front-end tests need Node.js 20+")
    if not (LABEXTENSION / "node_modules").is_dir():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=LABEXTENSION, check=True,
                       capture_output=True, text=True, timeout=240)
    done = subprocess.run(["npm", "test"], cwd=LABEXTENSION, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "fail 0" in done.stdout  # "# fail 0" (tap) or "ℹ fail 0" (spec reporter)


def test_four_bundles_exist():
    assert sorted(p.name for p in STATIC_DIR.glob("*.js")) == sorted(BUNDLES.values())


@pytest.mark.parametrize("widget_class", list(BUNDLES), ids=lambda c: c.__name__)
def test_widget_carries_its_bundle(widget_class):
    bundle = STATIC_DIR / BUNDLES[widget_class]
    assert bundle.is_file(), f"{bundle} is missing: run `npm --prefix labextension run build`"
    text = bundle.read_text(encoding="utf-8")
    assert "export" in text and len(text) > 1000
    widget = widget_class()
    try:
        assert widget._esm == text
    finally:
        widget.close()


def test_stream_view_bundle_is_small_and_the_libraries_ship_once():
    """stream_view.js goes out with every StreamView; the Markdown libraries go in agy_assets.js only."""
    stream = (STATIC_DIR / "stream_view.js").read_text(encoding="utf-8")
    assets = (STATIC_DIR / "agy_assets.js").read_text(encoding="utf-8")
    assert len(stream) < 20_000, len(stream)
    for name in HEAVY_LIBRARIES:
        assert name not in stream and name in assets, name
    assert "__agyAssets" in stream and "__agyAssets" in assets


def test_assets_widget_has_no_traits_of_its_own():
    widget = AssetsWidget()
    try:
        assert not {name for name in widget.keys if not name.startswith("_")} - {"layout", "tabbable", "tooltip"}
    finally:
        widget.close()


@pytest.fixture
def fresh_assets(monkeypatch):
    monkeypatch.setattr(widgets, "_assets", None)
    yield
    if widgets._assets is not None:
        widgets._assets.close()


def test_ensure_assets_is_one_instance_per_kernel(fresh_assets):
    first = ensure_assets()
    assert isinstance(first, AssetsWidget)
    assert ensure_assets() is first
    found = []
    threads = [threading.Thread(target=lambda: found.append(ensure_assets())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(widget is first for widget in found)


def test_ensure_assets_replaces_a_closed_instance(fresh_assets):
    first = ensure_assets()
    first.close()  # closed from the kernel
    second = ensure_assets()
    assert second is not first and second.comm is not None
    second.comm._closed = True  # closed by the front end
    third = ensure_assets()
    assert third is not second
    second.close()


def test_traits_and_defaults():
    stream, approval, usage = StreamView(), ApprovalView(), UsageView()
    try:
        assert (stream.agent, stream.model_name, stream.show_thoughts) == ("", "", True)
        assert (approval.state, approval.timeout_seconds, approval.args_json) == ("pending", 0.0, "")
        assert usage.data == {}
        for widget, names in ((stream, {"agent", "model_name", "show_thoughts"}),
                              (approval, {"agent", "tool", "args_json", "state", "reason", "timeout_seconds"}),
                              (usage, {"data"})):
            assert names <= set(widget.keys)
    finally:
        for widget in (stream, approval, usage):
            widget.close()


def test_messages_before_the_handler_is_set_are_held_not_lost():
    from agy_jupyter.notebook.widgets import ApprovalView

    view = ApprovalView(tool="add")
    got = []
    view._handle_custom_msg({"type": "rendered"}, [])  # what ipywidgets calls for a front-end message
    view._handle_custom_msg({"type": "decision", "approved": True}, [])
    view.set_handler(lambda widget, content, buffers: got.append(content["type"]))
    view._handle_custom_msg({"type": "later"}, [])
    assert got == ["rendered", "decision", "later"]
    view.close()
