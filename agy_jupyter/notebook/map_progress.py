"""agent.map's progress in a notebook: one compact widget (a bar, a line of counts, a Stop button), for an
interactive map (its rows' progress) and for a map in batch mode (its job: state, elapsed, next check, cost
at the batch price once the rows are in; Stop cancels the job).

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
from typing import Any, Callable, Mapping

from IPython import get_ipython
from IPython.display import display

from ..agent.batch import BATCH_PRICE_FACTOR
from ..agent.config import AgentConfig
from ..agent.map_batch import batch_line, batch_lines
from ..agent.map_progress import MapProgress, text_progress
from ..runtime.stream import ChatStream
from .transformer import in_kernel
from .usage import DEFAULT_PRICES, estimate_cost


class ProgressBox:
    """A bar, a line and a Stop button, displayed with the line as text/plain; `end` replaces them with the
    final line (text/plain and a <pre> copy). Created on the main thread; then one thread writes it."""

    def __init__(self, total: int, value: int, line: str, text: str, on_stop: Callable[[], Any], tooltip: str):
        import ipywidgets  # loaded with the first map shown in a kernel
        self.bar = ipywidgets.IntProgress(value=value, min=0, max=max(1, total),
                                          layout=ipywidgets.Layout(width="16em"))
        self.label = ipywidgets.HTML(value=_html(line))
        self.stop = ipywidgets.Button(description="Stop", tooltip=tooltip, layout=ipywidgets.Layout(width="5em"))
        self.stop.on_click(lambda _button: on_stop())
        self.box = ipywidgets.HBox([self.bar, self.label, self.stop])
        self.handle = display({**self.box._repr_mimebundle_(), "text/plain": text}, raw=True, display_id=True)

    def update(self, value: int, line: str) -> None:
        self.bar.value = value
        self.label.value = _html(line)

    def end(self, final: str) -> None:
        self.handle.update({"text/plain": final, "text/html": f"<pre>{html.escape(final)}</pre>"}, raw=True)
        for widget in (self.stop, self.label, self.bar, self.box):
            widget.close()


def _html(line: str) -> str:
    return (f'<span style="font-family: var(--jp-code-font-family, monospace); font-size: 12px">'
            f'{html.escape(line)}</span>')


class MapProgressView:
    """The widget of one map, fed by its progress events on the runtime loop."""

    def __init__(self, stream: ChatStream, first: MapProgress, prices: Mapping[str, Any]):
        self.prices = prices
        self.box = ProgressBox(first.total, first.done, self._line(first), self.text(first), stream.cancel,
                               "Stop the map (finished rows are kept)")
        stream.add_listener(self._on_event)

    def text(self, progress: MapProgress) -> str:
        return progress.text(cost=estimate_cost(progress.usage, progress.model, self.prices))

    def _line(self, progress: MapProgress) -> str:
        return self.text(progress).split("] ", 1)[-1]  # the bar itself is the widget

    def _on_event(self, event: Any) -> None:
        """On the runtime loop: the widgets' only writer once displayed."""
        if not isinstance(event, MapProgress):
            return
        if event.finished:
            self.box.end(self.text(event))
        else:
            self.box.update(event.done + event.failed, self._line(event))


class BatchProgressView:
    """The widget of one map in batch mode, fed with its job's reports (map_batch.run_batch) on the thread
    that waits for the job: the cell's (agent.map) or a worker's (agent.amap, %%chat --map --batch). Stop only
    sets the wait's stop event: the waiting thread cancels the job within batch.NAP s and ends the widget."""

    def __init__(self, rows: int, stop: Callable[[], None], prices: Mapping[str, Any]):
        self.prices = prices
        first = batch_line({"name": "", "rows": rows})
        self.box = ProgressBox(rows, 0, first, first, stop,
                               "Cancel the batch job (rows finished in earlier runs are kept)")

    def __call__(self, report: dict) -> None:
        if not report.get("finished"):
            self.box.update(report["rows"] if report["done"] else 0, batch_line(report))
            return
        cost = None
        if report.get("usage") is not None:
            cost = estimate_cost(report["usage"], report["model"], self.prices)
        self.box.end(batch_line(report, None if cost is None else cost * BATCH_PRICE_FACTOR))


def _prices(shell: Any) -> Mapping[str, Any]:
    magics = shell.magics_manager.registry.get("AgyMagics")
    return getattr(magics, "prices", None) or DEFAULT_PRICES


def show_map_progress(stream: ChatStream, first: MapProgress, config: AgentConfig) -> Any:
    """agent.map's progress display once `%load_ext agy_jupyter` ran: the widget in a kernel, text lines
    elsewhere (terminal IPython, scripts)."""
    shell = get_ipython()
    if not in_kernel(shell):
        show = text_progress()
        stream.add_listener(lambda event: show(event) if isinstance(event, MapProgress) else None)
        return None
    return MapProgressView(stream, first, _prices(shell))


def show_batch_progress(rows: int, stop: Callable[[], None]) -> Callable[[dict], None]:
    """The same for a map in batch mode: what gets its job's reports."""
    shell = get_ipython()
    if not in_kernel(shell):
        return batch_lines()
    return BatchProgressView(rows, stop, _prices(shell))
