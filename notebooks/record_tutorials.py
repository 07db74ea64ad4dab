"""Re-record the tutorial notebooks: run each one headless, save it with its outputs and its cassette.

    python notebooks/record_tutorials.py                 # every notebook, scripted replies, no key needed
    python notebooks/record_tutorials.py 03_dataframe    # one notebook
    python notebooks/record_tutorials.py --real          # against the real Gemini API (needs GEMINI_API_KEY)

Without --real the model is a FakeGemini answering with the scripted replies in `replies/NN_name.py`
(written to be what a real Gemini would say), and a recording proxy sits in front of it. With --real
the proxy sits in front of the real API and your key is used; it is scrubbed from the cassette.
Either way the notebook is executed by nbclient in a kernel started inside the recording block (so
it inherits GOOGLE_GEMINI_BASE_URL), then executed once more from the new cassette (which checks it
replays), and both files are written:

    notebooks/NN_name.ipynb              the notebook with its outputs (what GitHub shows)
    notebooks/cassettes/NN_name.json     every model request and reply (what CI replays)

tests/test_tutorials.py replays each cassette and checks the outputs. A --real recording gives other
answers than the scripted ones: update the expected content in that test when you commit it.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
CASSETTES = HERE / "cassettes"
REPLIES = HERE / "replies"
NOTEBOOKS = ["01_quickstart", "02_tools_and_approval", "03_dataframe", "04_several_agents", "05_python_api"]
CELL_TIMEOUT = 120  # seconds; a scripted cell takes well under one
# A stand-in key for scripted recordings: google-genai wants one, the FakeGemini ignores it,
# and the recorder scrubs it from the cassette like a real one.
SCRIPTED_KEY = "scripted-recording-key"
# A widget's output in a notebook saved without widget state points at a model that no longer exists:
# nbconvert skips it, and other viewers show an error or nothing. Its text/plain beside it stays.
# google-genai prefers GOOGLE_API_KEY to GEMINI_API_KEY, and Vertex settings to both.
OTHER_CREDENTIALS = ("GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

__all__ = ["NOTEBOOKS", "notebook_path", "cassette_path", "execute", "load_replies", "record_notebook",
           "drop_widget_views"]


def notebook_path(name: str) -> Path:
    return HERE / f"{name}.ipynb"


def cassette_path(name: str) -> Path:
    return CASSETTES / f"{name}.json"


def execute(name: str, timeout: int = CELL_TIMEOUT) -> nbformat.NotebookNode:
    """Run the notebook in a fresh kernel (it inherits this process's environment), in notebooks/."""
    notebook = nbformat.read(notebook_path(name), as_version=4)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)  # timings of an earlier run: noise in a diff
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(HERE)}}).execute()
    return notebook


def drop_widget_views(notebook: nbformat.NotebookNode) -> int:
    """Remove widget references that have no saved state (their text/plain stays); how many went."""
    dropped = 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data and "text/plain" in data:
                del data[WIDGET_VIEW]
                dropped += 1
    notebook.metadata.pop("widgets", None)
    return dropped


@contextmanager
def without_environ(names: tuple[str, ...]) -> Iterator[None]:
    """Unset variables for the block (a scripted recording must not pick up a real key or Vertex)."""
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def load_replies(name: str) -> Any:
    """The scripted model of one notebook: `replies/NN_name.py`'s REPLIES (list) or respond(request)."""
    path = REPLIES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"tutorial_replies_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _scripted_upstream(name: str) -> Any:
    """A FakeGemini (not started) answering with the notebook's scripted replies."""
    from agy_jupyter.testing import FakeGemini

    replies = load_replies(name)
    respond: Callable | None = getattr(replies, "respond", None)
    fake = FakeGemini(default=respond) if respond else FakeGemini()
    if not respond:
        fake.enqueue(*replies.REPLIES)
    return fake


def record_notebook(name: str, real: bool = False) -> nbformat.NotebookNode:
    """Execute `name` through the recording proxy; write the notebook (with outputs) and its cassette."""
    from agy_jupyter.testing import record, replay
    from agy_jupyter.testing.replay import patched_environ

    if real:
        if not (os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")):
            raise SystemExit("--real needs GEMINI_API_KEY (or GOOGLE_API_KEY) in the environment")
        with record(cassette_path(name)):
            execute(name)
    else:
        with _scripted_upstream(name) as upstream, without_environ(OTHER_CREDENTIALS), \
                patched_environ({"GEMINI_API_KEY": SCRIPTED_KEY}), record(cassette_path(name), upstream=upstream):
            execute(name)
        left = upstream.pending
        if left:
            raise SystemExit(f"{name}: {left} scripted replies were not used: the notebook asked less than "
                             f"replies/{name}.py expects")
    # Save what the cassette replays, which is what CI checks: a reply stopped mid-stream can hold a few
    # more events in the cassette (the proxy saw them) than the kernel had taken in when it stopped.
    with without_environ(OTHER_CREDENTIALS), replay(cassette_path(name), complete=True):
        notebook = execute(name)
    drop_widget_views(notebook)
    nbformat.write(notebook, notebook_path(name))
    return notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"notebooks to record (default: all of {', '.join(NOTEBOOKS)})")
    parser.add_argument("--real", action="store_true", help="record against the real Gemini API (GEMINI_API_KEY)")
    args = parser.parse_args(argv)
    for name in args.names or NOTEBOOKS:
        name = name.removesuffix(".ipynb")
        if name not in NOTEBOOKS:
            parser.error(f"unknown notebook {name!r}; choose from {', '.join(NOTEBOOKS)}")
        started = time.monotonic()
        record_notebook(name, real=args.real)
        print(f"{name}: recorded in {time.monotonic() - started:.1f} s -> {notebook_path(name).name}, "
              f"cassettes/{cassette_path(name).name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
