"""agent.map's progress: what a map reports while it runs, as a one-line text bar, and how it is shown.

The agent layer cannot import the notebook layer: `%load_ext agy_jupyter` registers the notebook's widget
(notebook/map_progress.py) with `use_progress_display`; without it a map prints a text line every few
seconds and at the end. This module is light (no session, no pandas) so the extension can load it early.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from ..runtime.stream import ChatStream
    from .config import AgentConfig
    from .history import Usage

PROGRESS_INTERVAL = 0.25  # seconds between two progress events


def _no_usage() -> Usage:
    from .history import Usage  # google-genai comes with it: this module is imported at %load_ext

    return Usage()


@dataclass(frozen=True)
class MapProgress:
    """Where a map stands: emitted every PROGRESS_INTERVAL s while it runs, and once at the end."""

    total: int
    done: int = 0  # answered, this run or an earlier one (`resumed`)
    failed: int = 0
    in_flight: int = 0
    resumed: int = 0  # finished in an earlier run, skipped in this one
    elapsed: float = 0.0
    usage: Usage = field(default_factory=_no_usage)
    model: str = ""
    refused_tools: tuple[str, ...] = ()
    finished: bool = False
    stopped: bool = False

    @property
    def rows_per_second(self) -> float:
        ran = self.done + self.failed - self.resumed
        return ran / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current pace (None before the first row ends)."""
        rate = self.rows_per_second
        left = self.total - self.done - self.failed
        return left / rate if rate > 0 else (0.0 if left == 0 else None)

    def text(self, width: int = 24, cost: float | None = None) -> str:
        """A one-line text bar: `[#####.....] 250/500 done, 3 failed, 16 in flight, 51.2 rows/s, ETA 5 s`."""
        ended = self.done + self.failed
        filled = int(width * ended / self.total) if self.total else width
        parts = [f"{self.done}/{self.total} done"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.resumed:
            parts.append(f"{self.resumed} from an earlier run")
        if not self.finished:
            parts.append(f"{self.in_flight} in flight")
        parts.append(f"{self.rows_per_second:.1f} rows/s")
        if not self.finished and self.eta is not None:
            parts.append(f"ETA {_duration(self.eta)}")
        parts.append(f"{self.usage.total_tokens:,} tokens")
        if cost is not None:
            parts.append(f"~${cost:.4f}")
        state = " (stopped)" if self.stopped else ""
        line = f"map [{'#' * filled}{'.' * (width - filled)}] {', '.join(parts)}{state}"
        if self.refused_tools:
            line += (f"\n  tools that need approval were refused for every row: {', '.join(self.refused_tools)} "
                     "(allow them with policies=[allow(...)] to use them in a map)")
        return line


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def text_progress(every: float = 5.0) -> Callable[[MapProgress], None]:
    """The default progress outside a notebook: a text line at most every `every` s, and the last one."""
    last = [0.0]

    def show(progress: MapProgress) -> None:
        now = time.monotonic()
        if progress.finished or now - last[0] >= every:
            last[0] = now
            print(progress.text(), flush=True)
    return show


# The notebook layer swaps in its widget (notebook/map_progress.py) when it is loaded: this layer cannot
# import it. A display is called on the caller's thread with the map's handle and the first progress.
ProgressDisplay = Callable[["ChatStream", MapProgress, "AgentConfig"], Any]
_display: ProgressDisplay | None = None


def use_progress_display(display: ProgressDisplay | None) -> None:
    """Set how `agent.map(progress=True)` shows progress (None: a text line every few seconds)."""
    global _display
    _display = display


def progress_display() -> ProgressDisplay | None:
    return _display


# A map in batch mode (map_batch.py) is shown the same way: a batch display is called on the caller's thread
# with the number of rows and a `stop` callable (asks the wait to cancel the job, from any thread), and returns
# what gets the job's reports (map_batch.run_batch), on the thread that waits for the job.
BatchDisplay = Callable[[int, Callable[[], None]], Callable[[dict], None]]
_batch_display: BatchDisplay | None = None


def use_batch_display(display: BatchDisplay | None) -> None:
    """Set how `agent.map(mode="batch", progress=True)` shows its job (None: a text line per job state)."""
    global _batch_display
    _batch_display = display


def batch_display() -> BatchDisplay | None:
    return _batch_display
