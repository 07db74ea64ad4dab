"""Run the fake Gemini server from the command line, for manual testing of notebooks and agents.

    python -m agy_jupyter.testing [--port N] [--host 127.0.0.1]
                                  [--reply-text TEXT | --echo] [--chunks N] [--delay S] [--ttft S]
                                  [--script FILE.json] [--quiet]

It prints the base URL and the environment lines to set, e.g.::

    FakeGemini serving at http://127.0.0.1:43117
    GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:43117
    GEMINI_API_KEY=fake-key

then serves until Ctrl-C (or SIGTERM). Every generate request gets the next reply
from ``--script`` (a JSON list of replies, format in
:mod:`agy_jupyter.testing.replies`), then the default reply: ``--reply-text``, or
(the default, ``--echo``) ``"You said: <last user text>"``. ``--chunks``,
``--delay`` and ``--ttft`` shape the default reply.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Sequence

from .fake_gemini import FakeGemini
from .replies import Reply


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m agy_jupyter.testing",
                                     description="Serve a fake Gemini API (google-genai REST + SSE).")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: pick a free one)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--reply-text", metavar="TEXT", help="answer every request with TEXT")
    mode.add_argument("--echo", action="store_true", help='answer "You said: <last user text>" (default)')
    parser.add_argument("--chunks", type=int, default=1, help="stream the default reply in N chunks")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds between chunks")
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds before the first chunk")
    parser.add_argument("--script", metavar="FILE.json",
                        help='JSON list of replies served first, or {"replies": [...], "default": {...}}')
    parser.add_argument("--quiet", action="store_true", help="do not log requests to stderr")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.reply_text is not None:
        default = Reply.text(args.reply_text, chunks=args.chunks, delay=args.delay, ttft=args.ttft)
    else:
        default = Reply.echo(chunks=args.chunks, delay=args.delay, ttft=args.ttft)

    scripted: list[Reply] = []
    if args.script:
        with open(args.script, encoding="utf-8") as fh:
            script = json.load(fh)
        if isinstance(script, dict):
            if script.get("default") is not None:
                default = Reply.from_dict(script["default"])
            script = script.get("replies", [])
        scripted = [Reply.from_dict(item) for item in script]

    fake = FakeGemini(host=args.host, port=args.port, default=default, log=not args.quiet)
    fake.enqueue(*scripted)
    fake.start()

    done = threading.Event()
    # Handle SIGINT explicitly too: a shell starts background jobs with SIGINT ignored, and
    # SIGTERM (e.g. from a test harness) should stop as cleanly as Ctrl-C.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    print(f"FakeGemini serving at {fake.url}", flush=True)
    for name, value in fake.env().items():
        print(f"{name}={value}", flush=True)
    if scripted:
        print(f"{len(scripted)} scripted repl{'y' if len(scripted) == 1 else 'ies'} queued", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while not done.wait(0.5):  # a timed wait keeps Ctrl-C responsive
            pass
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
