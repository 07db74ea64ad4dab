"""The notebook widgets' synced state; each class renders with its bundled ES module in static/.

The front-end code lives in ``labextension/src`` and is bundled by ``npm run build`` into
``static/*.js`` (the wheel build runs it). The message protocol each view speaks is documented
in the view's source file.

anywidget sends a widget's ``_esm`` with every instance, so the Markdown renderer the StreamViews
use (marked, DOMPurify, highlight.js: ~145 KB) is not in ``stream_view.js`` (~11 KB) but in
``agy_assets.js``, which one hidden `AssetsWidget` per kernel process ships to the page once:
call `ensure_assets()` before creating a `StreamView`.
"""
from __future__ import annotations

import pathlib
import threading
from typing import Any, Callable

import anywidget
import traitlets as t


STATIC_DIR = pathlib.Path(__file__).parent / "static"
BUILD_HINT = ("build the front end with `npm --prefix labextension install && npm --prefix labextension run build` "
              "in a source checkout, or reinstall agy_jupyter")


class _Bundle:
    """`_esm` of a widget class: the bundle's text, read when a widget is created.

    anywidget reads a class-level path at import time; reading it per instance instead keeps
    ``import agy_jupyter`` working when the front end is not built, and makes the error say what to do.
    """

    def __init__(self, name: str) -> None:
        self.path = STATIC_DIR / name

    def __get__(self, widget: object, owner: type | None = None) -> object:
        if widget is None:
            return self
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(f"The widget bundle {self.path} is missing: {BUILD_HINT}.") from None


class AssetsWidget(anywidget.AnyWidget):
    """The StreamViews' Markdown renderer, sent to the page once per kernel process; never displayed.

    Its module publishes the renderer on ``globalThis.__agyAssets`` as soon as the front end creates
    the model. Get the instance from `ensure_assets()` rather than creating one.
    """

    _esm = _Bundle("agy_assets.js")


_assets_lock = threading.Lock()
_assets: AssetsWidget | None = None


def _comm_is_open(widget: AssetsWidget) -> bool:
    comm = getattr(widget, "comm", None)  # None once closed from the kernel
    return comm is not None and not getattr(comm, "_closed", False)  # _closed: closed by the front end


def ensure_assets() -> AssetsWidget:
    """The kernel's one `AssetsWidget`, created on the first call (or again if its comm was closed).

    Cheap after the first call: call it before creating every `StreamView`. Do not display or close it.
    """
    global _assets
    with _assets_lock:
        if _assets is None or not _comm_is_open(_assets):
            _assets = AssetsWidget()
        return _assets


class _HeldMessages:
    """Keeps front-end messages that arrive before `set_handler`, then hands them over in order.

    The comm opens inside the constructor, so a fast front end (or a test) can answer before the
    creating thread has registered a handler; `on_msg` would drop those messages.
    """

    def _handle_custom_msg(self, content: object, buffers: object) -> None:  # the kernel's main thread
        super()._handle_custom_msg(content, buffers)  # on_msg listeners, as usual
        with _held_lock:
            handler = getattr(self, "_agy_handler", None)
            if handler is None:
                self.__dict__.setdefault("_agy_held", []).append((content, buffers))
                return
        handler(self, content, buffers)

    def set_handler(self, handler: "Callable[[object, object, object], None]") -> None:
        """Call handler(widget, content, buffers) for every message, including those already held."""
        with _held_lock:
            held = self.__dict__.pop("_agy_held", [])
            self._agy_handler = handler
        for content, buffers in held:
            handler(self, content, buffers)


_held_lock = threading.Lock()


class StreamView(_HeldMessages, anywidget.AnyWidget):
    """A streamed reply: text, thoughts, tool calls and status, fed by custom "ops" messages.

    Call `ensure_assets()` before creating a StreamView: the view renders Markdown with the renderer
    the `AssetsWidget` publishes in the page. Without it (or until it loads) the view still works but
    shows the text as plain text, and after 10 s a "formatting library not loaded" note.
    """

    _esm = _Bundle("stream_view.js")
    agent = t.Unicode("").tag(sync=True)
    model_name = t.Unicode("").tag(sync=True)
    show_thoughts = t.Bool(True).tag(sync=True)


class ApprovalView(_HeldMessages, anywidget.AnyWidget):
    """Approve or Deny one tool call, showing its preview; the click comes back as a "decision" message
    ({"approved", "reason", "always", "scope": "args" | "tool"})."""

    _esm = _Bundle("approval_view.js")
    agent = t.Unicode("").tag(sync=True)
    tool = t.Unicode("").tag(sync=True)
    args_json = t.Unicode("").tag(sync=True)
    # what will run ({} for none): {"kind": "code" | "command" | "diff", "text": str, "language": str}
    preview = t.Dict().tag(sync=True)
    state = t.Unicode("pending").tag(sync=True)
    reason = t.Unicode("").tag(sync=True)
    timeout_seconds = t.Float(0.0).tag(sync=True)


class UsageView(anywidget.AnyWidget):
    """Token counts, estimated cost and context fill of a turn, an agent and the session."""

    _esm = _Bundle("usage_view.js")
    data = t.Dict().tag(sync=True)

    def __repr__(self) -> str:
        """A text table: anywidget makes it the text/plain beside the widget (terminals, jupyter console, logs)."""
        from .usage import usage_text  # usage.py brings the agent layer: not at %load_ext
        return usage_text(self.data)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget, and beside it the table as sanitized HTML for where no widget state is saved."""
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            from .usage import usage_html
            data["text/html"] = usage_html(self.data)
        return bundle
