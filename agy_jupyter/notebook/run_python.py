"""run_python: the model's code, run in the user namespace on the kernel's main thread.

The tool itself is async and runs on the runtime loop; the code never does. It is handed to the main
thread of the cell that started the reply (`reply_runner`, set around `agent.stream` by display_chat
and read back here through the turn's copied context):
- attached (the cell awaits on the kernel's loop): `MainThread.call`, run at once;
- blocking (display_chat_blocking): the cell's wait loop serves a queue of jobs (`BlockingJobs`),
  since the kernel's loop is blocked under it;
- background (the cell returned): `MainThread.call` runs it when the kernel is free, in the cell's
  captured context, so its output lands in that cell.
A turn no cell started (an inbox message) uses the main thread captured at `%load_ext`. Measured
(benchmarks/bench_notebook_tools.py): the round trip costs 0.14 ms (attached) / 0.09 ms (blocking) more
than `exec` of the same code.

Running in the cell's context, the code's print and display() land in the %%chat cell, in order, under
what the reply has said so far; when the code showed something (`Outcome.shown`), the reply continues in a
new output below it (LiveReply.code_runner), so text, code output and text read in order. Matplotlib figures are shown there as PNG at `plt.show()` (ours while the code runs:
the inline backend's would display and close them before the model saw them) or at the end if left
open, then closed, and given back to the model as image parts of the function response, each at most
FIGURE_MAX_BYTES. The answer (stdout, stderr, the last expression's repr, a short traceback) is capped
at OUTPUT_CAP characters.

Stopping: while the code runs, SIGINT is ours. The interrupt button raises KeyboardInterrupt in the
code; the turn is then cancelled (the history keeps a "cancelled" answer for the call) and the kernel's
own handler gets the signal too, so the cell stops. A timeout (RUN_TIMEOUT) or a cancelled turn sends
SIGINT to the main thread and the code gets RunStopped instead, even inside a sleep; the model is told.
"""
from __future__ import annotations

import ast
import asyncio
import base64
import concurrent.futures
import contextlib
import contextvars
import ctypes
import dataclasses
import importlib.util
import io
import itertools
import linecache
import queue
import re
import signal
import struct
import sys
import threading
import traceback
from typing import Any, Callable, Iterator

from IPython import get_ipython

from ..agent.builtin_tools import BuiltinContext, BuiltinTools, register
from ..agent.content import Blob
from ..agent.tools import Tool, ToolResult, as_tool
from ..runtime.interrupt import POLL_INTERVAL
from . import main_thread
from .notebook_tools import OUTPUT_CAP, cap

RUN_TIMEOUT = 300.0  # seconds one run_python may take
FIGURE_MAX_BYTES = 400_000  # PNG bytes of one figure given to the model
MAX_FIGURES = 4  # figures of one call given to the model (all are shown in the cell)
TRACEBACK_FRAMES = 8
UNBOUND_START_TIMEOUT = 10.0  # a turn no cell started (agent.chat in a cell, an inbox message) waits this
# long for the kernel to be free: agent.chat() in a sync cell blocks the very loop the code would run on

# where run_python's code runs for the reply being answered; display_chat sets it around agent.stream
reply_runner: contextvars.ContextVar[Any] = contextvars.ContextVar("agy_reply_runner", default=None)
_names = itertools.count(1)


class RunStopped(BaseException):
    """Raised in the main thread to stop code whose call timed out or whose turn was cancelled."""


@contextlib.contextmanager
def jobs_run_by(runner: Any) -> Iterator[None]:
    """Turns started inside run their run_python code through `runner` (a MainThread or BlockingJobs)."""
    token = reply_runner.set(runner)
    try:
        yield
    finally:
        reply_runner.reset(token)


class BlockingJobs:
    """The main-thread queue a blocking cell serves while it waits for its reply."""

    def __init__(self) -> None:
        self.thread = threading.current_thread()
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._open = True

    def call(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        """Run fn(*args) in the waiting cell; the future holds the outcome (an error once it stopped serving)."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if self._open:
                self._jobs.put((future, fn, args))
                return future
        future.set_exception(RuntimeError("the cell that started this reply is no longer waiting"))
        return future

    def serve_until(self, done: Callable[[], bool]) -> None:
        """Run queued jobs until done(); the caller handles KeyboardInterrupt (it cancels the turn)."""
        try:
            while not done():
                try:
                    future, fn, args = self._jobs.get(timeout=POLL_INTERVAL)
                except queue.Empty:
                    continue
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args))
                    except BaseException as exc:  # handed to the tool that waits on it
                        future.set_exception(exc)
        finally:
            with self._lock:
                self._open = False
            while not self._jobs.empty():
                future, _, _ = self._jobs.get_nowait()
                if future.set_running_or_notify_cancel():
                    future.set_exception(RuntimeError("the reply ended before the code could run"))


@dataclasses.dataclass
class Outcome:
    """What one run produced, read back by the tool on the runtime loop."""

    stdout: str = ""
    stderr: str = ""
    result: str | None = None
    error: str | None = None
    interrupted: bool = False
    figures: list[bytes] = dataclasses.field(default_factory=list)
    figures_dropped: int = 0
    displays: list[str] = dataclasses.field(default_factory=list)  # text/plain of what display() showed
    shown: bool = False  # the code printed or displayed something in the cell

    def response(self) -> dict[str, Any]:
        answer: dict[str, Any] = {}
        if self.stdout:
            answer["stdout"] = cap(self.stdout, OUTPUT_CAP // 2)
        if self.stderr:
            answer["stderr"] = cap(self.stderr, OUTPUT_CAP // 4)
        if self.result is not None:
            answer["result"] = cap(self.result, OUTPUT_CAP // 4)
        if self.error is not None:
            answer["error"] = cap(self.error, OUTPUT_CAP // 4)
        if self.displays:
            answer["displayed"] = cap("\n".join(self.displays), OUTPUT_CAP // 4)
        if self.figures or self.figures_dropped:
            answer["figures"] = (f"{len(self.figures)} figure(s) attached as images"
                                 + (f"; {self.figures_dropped} more not attached (over the size or count cap)"
                                    if self.figures_dropped else ""))
        return answer or {"result": None}


class _Tee:
    """Writes through to the cell's stream and keeps a copy (at most a little over OUTPUT_CAP); anything
    else (encoding, isatty, fileno) is the cell stream's."""

    def __init__(self, target: Any):
        self.target = target
        self.kept: list[str] = []
        self.size = 0  # characters written
        self.kept_size = 0  # characters kept

    def write(self, text: str) -> int:
        if self.size <= OUTPUT_CAP:
            self.kept.append(text)
            self.kept_size = self.size + len(text)
        self.size += len(text)
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()

    def text(self) -> str:
        more = self.size - self.kept_size
        return "".join(self.kept) + (f"\n[{more} more characters were printed]" if more else "")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)


class PythonJob:
    """One run_python call: runs on the main thread; `stop` may be called from any thread."""

    def __init__(self, code: str, shell: Any):
        self.code = code
        self.shell = shell
        self.filename = f"<run_python-{next(_names)}>"
        self._lock = threading.Lock()
        self._thread_id: int | None = None
        self._value: Any = None  # the last expression's value, to display
        self._stop_requested = False
        self._signals = False  # True while running on the main thread with our SIGINT handler
        self._displayed = 0  # outputs the code published in the cell (display(), figures, the last value)

    def stop(self) -> None:
        """Stop the running code with RunStopped (a no-op if it has not started or has ended).

        On the main thread a SIGINT to it interrupts even a sleep or a blocking read; elsewhere
        PyThreadState_SetAsyncExc stops Python code at its next bytecode (not one long C call).
        """
        with self._lock:
            if self._thread_id is None or self._stop_requested:
                return
            self._stop_requested = True
            if self._signals:
                signal.pthread_kill(self._thread_id, signal.SIGINT)
            else:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread_id),
                                                           ctypes.py_object(RunStopped))

    def _on_sigint(self, _signum: int, _frame: Any) -> None:
        raise RunStopped() if self._stop_requested else KeyboardInterrupt()

    def run(self) -> Outcome:
        outcome = Outcome()
        out, err = _Tee(sys.stdout), _Tee(sys.stderr)
        saved = sys.stdout, sys.stderr
        previous = _take_sigint(self._on_sigint)
        self._signals = previous is not None
        try:  # RunStopped can arrive anywhere up to the end of the `with self._lock` below
            try:
                with self._lock:
                    self._thread_id = threading.get_ident()
                sys.stdout, sys.stderr = out, err
                self._execute(outcome)
            finally:
                with self._lock:
                    self._thread_id = None
        except RunStopped:
            outcome.error = "stopped: the call timed out or the turn was cancelled"
        except KeyboardInterrupt:
            outcome.interrupted = True
            outcome.error = "KeyboardInterrupt: the user interrupted the kernel"
        finally:
            sys.stdout, sys.stderr = saved
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        if outcome.interrupted and previous is not None:
            signal.raise_signal(signal.SIGINT)  # the kernel's own handling too: the cell stops, as for any cell
        outcome.stdout, outcome.stderr = out.text(), err.text()
        if self._value is not None:  # shown in the cell like Out[] (after the capture: a terminal prints it)
            self.shell.display_pub.publish(_bundle(self.shell, self._value))
            self._displayed += 1
            self._value = None
        try:
            self._collect_figures(outcome)
        except Exception as exc:  # a figure that cannot render must not lose the rest
            outcome.stderr += f"\n[figures could not be rendered: {type(exc).__name__}: {exc}]"
        outcome.shown = bool(out.size or err.size or self._displayed)
        return outcome

    def _execute(self, outcome: Outcome) -> None:
        ns = self.shell.user_ns
        linecache.cache[self.filename] = (len(self.code), None, self.code.splitlines(True), self.filename)
        try:
            tree = ast.parse(self.code, self.filename, "exec")
        except SyntaxError:
            outcome.error = "".join(traceback.format_exception_only(*sys.exc_info()[:2])).strip()
            return
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        publisher = self.shell.display_pub
        publish, patched_before = publisher.publish, vars(publisher).get("publish")

        def publish_and_keep(data: Any, *args: Any, **kwargs: Any) -> Any:  # display() in the code
            self._displayed += 1
            if isinstance(data, dict) and "text/plain" in data and "image/png" not in data:
                outcome.displays.append(str(data["text/plain"]))
            return publish(data, *args, **kwargs)

        publisher.publish = publish_and_keep
        plt = _pyplot_for(self.code)
        show = plt.show if plt is not None else None
        if plt is not None:  # the inline backend's show() displays and closes: the model would see nothing
            plt.show = lambda *args, **kwargs: self._collect_figures(outcome)
        try:
            exec(compile(tree, self.filename, "exec"), ns)
            if last is not None:
                value = eval(compile(ast.Expression(last.value), self.filename, "eval"), ns)
                if value is not None:
                    outcome.result = _repr(value)
                    self._value = value
        except (RunStopped, KeyboardInterrupt):
            raise
        except BaseException as exc:  # the model's code failed: a short traceback goes back to it
            outcome.error = _short_traceback(exc)
            print(outcome.error, file=sys.stderr)
        finally:
            if patched_before is None:
                vars(publisher).pop("publish", None)  # the class's method again
            else:
                publisher.publish = patched_before
            if plt is not None and plt.show is not show:
                plt.show = show

    def _collect_figures(self, outcome: Outcome) -> None:
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is None:  # the code did not plot
            return
        from IPython.display import display
        for number in plt.get_fignums():
            figure = plt.figure(number)
            png = _png(figure)
            plt.close(figure)
            display({"image/png": base64.b64encode(png).decode("ascii"), "text/plain": _figure_text(figure, png)},
                    raw=True)
            self._displayed += 1
            small = png if len(png) <= FIGURE_MAX_BYTES else _png(figure, FIGURE_MAX_BYTES / len(png))
            if len(small) <= FIGURE_MAX_BYTES and len(outcome.figures) < MAX_FIGURES:
                outcome.figures.append(small)
            else:
                outcome.figures_dropped += 1


def _take_sigint(handler: Callable[[int, Any], None]) -> Any:
    """Install `handler` for SIGINT while the code runs; the previous handler, or None off the main thread.

    Measured (ipykernel 7.4): during an async cell, SIGINT only wakes the kernel's loop, which cannot
    run while this code holds it, so the interrupt button did nothing until the code ended. With our
    handler the code gets KeyboardInterrupt at once; the kernel's own handler is then given the signal
    too, so the cell stops as the button stops any cell.
    """
    try:
        return signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (a plain script's worker): leave signals alone
        return None


_PLOTS = re.compile(r"matplotlib|pyplot|\bplt\b|seaborn|\.plot\b|\.hist\(|\.boxplot\(")


def _pyplot_for(code: str) -> Any:
    """matplotlib.pyplot when the code may plot (imported first, so its show() can be ours), else None."""
    if "matplotlib.pyplot" not in sys.modules:
        if not _PLOTS.search(code) or importlib.util.find_spec("matplotlib") is None:
            return None  # code that does not plot does not pay for importing matplotlib
    import matplotlib.pyplot
    return matplotlib.pyplot


def _png(figure: Any, scale: float = 1.0) -> bytes:
    buffer = io.BytesIO()
    dpi = figure.dpi * (scale ** 0.5 if scale < 1 else 1.0) * (0.9 if scale < 1 else 1.0)
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def _figure_text(figure: Any, png: bytes) -> str:
    """What a text-only front end shows for a figure: its title and size, not an object's repr."""
    width, height = struct.unpack(">II", png[16:24])  # the PNG's IHDR chunk
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    title = (figure._suptitle.get_text() if figure._suptitle is not None else "") or "; ".join(titles)
    return f"[figure{': ' + title if title else ''} ({width}x{height} PNG)]"


def _repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:
        return f"<{type(value).__name__}: repr failed: {type(exc).__name__}: {exc}>"


def _bundle(shell: Any, value: Any) -> dict:
    try:
        data, _ = shell.display_formatter.format(value)
        return data
    except Exception:
        return {"text/plain": _repr(value)}


def _short_traceback(exc: BaseException) -> str:
    """The model's frames only (ours are skipped), at most TRACEBACK_FRAMES of them."""
    tb = exc.__traceback__
    while tb is not None and not tb.tb_frame.f_code.co_filename.startswith("<run_python-"):
        tb = tb.tb_next
    lines = traceback.format_exception(type(exc), exc, tb, limit=-TRACEBACK_FRAMES)
    return "".join(lines).strip()


def _runner() -> tuple[Any, bool]:
    """Where the code runs, and whether a cell bound it (False: the kernel's main loop, whenever free)."""
    runner = reply_runner.get()
    if runner is not None:
        return runner, True
    kernel_main = main_thread.kernel_main
    if kernel_main is None:
        raise RuntimeError("run_python needs a notebook kernel: run `%load_ext agy_jupyter` there first")
    if kernel_main.loop is None:  # terminal IPython: no loop to hand the code to
        raise RuntimeError("run_python runs code in a Jupyter kernel (from %%chat or display_chat); "
                           "this shell has no kernel loop to run it on")
    return kernel_main, False


async def run_python(code: str) -> ToolResult:
    """Run Python code in the user's notebook kernel, in the user's namespace (variables persist).

    Returns stdout, stderr, the repr of the last expression and any error as a short traceback.
    Matplotlib figures left open are shown to the user and attached to the answer as images.

    Args:
        code: Python source to run, as in a notebook cell.
    """
    shell = get_ipython()
    if shell is None:
        raise RuntimeError("run_python needs an IPython kernel")
    job = PythonJob(code, shell)
    runner, bound = _runner()
    future = runner.call(job.run)
    waiting = asyncio.wrap_future(future)  # cancelling it unqueues a job not yet started
    try:
        if not bound:
            await asyncio.wait({waiting}, timeout=UNBOUND_START_TIMEOUT)
            if future.cancel():  # never started: most likely the cell that waits for this very turn
                raise RuntimeError(
                    f"the code could not start within {UNBOUND_START_TIMEOUT:g} s: the kernel is busy running a "
                    f"cell. A turn started with agent.chat() in a cell holds the kernel; ask with %%chat or "
                    f"`await agy.display_chat(agent, ...)` so that code can run")
        outcome: Outcome = await waiting
    except asyncio.CancelledError:
        job.stop()  # a timeout or a cancelled turn: stop the code if it is running
        raise
    media = [Blob(data=png, mime_type="image/png") for png in outcome.figures]
    if outcome.interrupted:  # the interrupt button: the turn ends here, with this call answered "cancelled"
        asyncio.current_task().cancel()
        await asyncio.sleep(0)
    return ToolResult(outcome.response(), media)


def _preview(args: dict) -> dict:
    return {"kind": "code", "text": str(args.get("code", "")), "language": "python"}


def _factory(_context: BuiltinContext) -> Tool:
    return dataclasses.replace(as_tool(run_python), effect="execute", preview=_preview, timeout=RUN_TIMEOUT)


register(BuiltinTools.RUN_PYTHON, _factory)
