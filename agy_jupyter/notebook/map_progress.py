"""agent.map's progress in a notebook: one compact widget (a bar, a line of counts, a Stop button).

Built from ipywidgets (IntProgress, HTML, Button) so it renders in every front end that renders widgets,
with no view module of ours. The output also carries the same line as text/plain, which is what a text
front end shows and what a headless run (nbclient, papermill) keeps: when the map ends, the output is
replaced by the final line as text/plain and a <pre> copy, so a saved notebook shows it without widget state.

Threads: the widgets are created and displayed on the main thread (the cell); after that only the runtime
thread writes them, from the map's progress events (≤ 4 per second, see agent/map_progress.py), one writer
per widget as ipywidgets needs. A Stop click arrives on the main thread and only asks the runtime loop to
stop the map (which keeps the finished rows); in a blocking `agent.map(...)` cell a click waits for the
cell, so use `await agent.amap(...)` or `%%chat --map` (awaited) for a live Stop button, or the interrupt
button.
"""
from __future__ import annotations

import html
from typing import Any, Mapping

from IPython import get_ipython
from IPython.display import display

from ..agent.config import AgentConfig
from ..agent.map_progress import MapProgress, text_progress
from ..runtime.stream import ChatStream
from .transformer import in_kernel
from .usage import DEFAULT_PRICES, estimate_cost


class MapProgressView:
    """The widget of one map, fed by its progress events on the runtime loop."""

    def __init__(self, stream: ChatStream, first: MapProgress, prices: Mapping[str, Any]):
        import ipywidgets  # loaded with the first map shown in a kernel
        self.prices = prices
        self.bar = ipywidgets.IntProgress(value=first.done, min=0, max=max(1, first.total),
                                          layout=ipywidgets.Layout(width="16em"))
        self.label = ipywidgets.HTML(value=self._html(first))
        self.stop = ipywidgets.Button(description="Stop", tooltip="Stop the map (finished rows are kept)",
                                      layout=ipywidgets.Layout(width="5em"))
        self.stop.on_click(lambda _button: stream.cancel())
        self.box = ipywidgets.HBox([self.bar, self.label, self.stop])
        bundle = {**self.box._repr_mimebundle_(), "text/plain": self.text(first)}
        self.handle = display(bundle, raw=True, display_id=True)
        stream.add_listener(self._on_event)

    def text(self, progress: MapProgress) -> str:
        return progress.text(cost=estimate_cost(progress.usage, progress.model, self.prices))

    def _html(self, progress: MapProgress) -> str:
        line = html.escape(self.text(progress).split("] ", 1)[-1])  # the bar itself is the widget
        return f'<span style="font-family: var(--jp-code-font-family, monospace); font-size: 12px">{line}</span>'

    def _on_event(self, event: Any) -> None:
        """On the runtime loop: the widgets' only writer once displayed."""
        if not isinstance(event, MapProgress):
            return
        if not event.finished:
            self.bar.value = event.done + event.failed
            self.label.value = self._html(event)
            return
        final = self.text(event)
        self.handle.update({"text/plain": final, "text/html": f"<pre>{html.escape(final)}</pre>"}, raw=True)
        for widget in (self.stop, self.label, self.bar, self.box):
            widget.close()


def show_map_progress(stream: ChatStream, first: MapProgress, config: AgentConfig) -> Any:
    """agent.map's progress display once `%load_ext agy_jupyter` ran: the widget in a kernel, text lines
    elsewhere (terminal IPython, scripts)."""
    shell = get_ipython()
    if not in_kernel(shell):
        show = text_progress()
        stream.add_listener(lambda event: show(event) if isinstance(event, MapProgress) else None)
        return None
    magics = shell.magics_manager.registry.get("AgyMagics")
    prices = getattr(magics, "prices", None) or DEFAULT_PRICES
    return MapProgressView(stream, first, prices)
