"""Run the fake Gemini server from the command line, for manual testing of notebooks and agents.

    python -m agy_jupyter.testing [--port N] [--host 127.0.0.1]
                                  [--reply-text TEXT | --echo | --local [FILE.gguf]] [--chunks N] [--delay S] [--ttft S]
                                  [--script FILE.json] [--quiet]
    python -m agy_jupyter.testing --cassette FILE.json [--speed fast|realtime|N]
    python -m agy_jupyter.testing --record FILE.json [--upstream URL | --local [FILE.gguf]]

It prints the base URL and the environment lines to set, e.g.::

    FakeGemini serving at http://127.0.0.1:43117
    GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:43117
    GEMINI_API_KEY=fake-key

then serves until Ctrl-C (or SIGTERM). Every generate request gets the next reply
from ``--script`` (a JSON list of replies, format in
:mod:`agy_jupyter.testing.replies`), then the default reply: ``--reply-text``, or
(the default, ``--echo``) ``"You said: <last user text>"``. ``--chunks``,
``--delay`` and ``--ttft`` shape the default reply. ``--local`` answers with the embedded local model
instead (or the GGUF given; see :mod:`agy_jupyter.testing.local_replies`), loaded on the first request.

``--cassette`` replays a recorded session instead (see :mod:`agy_jupyter.testing.cassette`);
a request the cassette does not hold is answered with HTTP 400 naming the difference, logged
to stderr, and makes the exit status 1. ``--record`` runs the recording proxy in front of
``--upstream`` (default: where google-genai would send requests) and writes the cassette as
replies finish; it prints only ``GOOGLE_GEMINI_BASE_URL`` (your own key is used, never written).
``--record FILE.json --local`` records the local model's answers (a fake server answering with it is the
upstream), and prints ``GEMINI_API_KEY=fake-key`` too: no real key is involved.
To run a notebook headless against a cassette, start ``--cassette`` in the background, export
the two variables it prints, then start the kernel (nbclient, ``jupyter execute``).
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Sequence

from ..runtime.errors import ConfigError
from .fake_gemini import FakeGemini
from .local_replies import LocalReplies
from .recorder import Recorder
from .replies import Reply


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m agy_jupyter.testing",
                                     description="Serve a fake Gemini API (google-genai REST + SSE).")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: pick a free one)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--reply-text", metavar="TEXT", help="answer every request with TEXT")
    mode.add_argument("--echo", action="store_true", help='answer "You said: <last user text>" (default)')
    mode.add_argument("--local", nargs="?", const="", metavar="FILE.gguf",
                      help="answer with the embedded local model (or this GGUF); needs agy_jupyter[local]")
    parser.add_argument("--chunks", type=int, default=1, help="stream the default reply in N chunks")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds between chunks")
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds before the first chunk")
    parser.add_argument("--script", metavar="FILE.json",
                        help='JSON list of replies served first, or {"replies": [...], "default": {...}}')
    parser.add_argument("--quiet", action="store_true", help="do not log requests to stderr")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--cassette", metavar="FILE.json", help="replay this recorded session")
    source.add_argument("--record", metavar="FILE.json",
                        help="record a session through a proxy to --upstream into FILE.json")
    parser.add_argument("--speed", default="fast",
                        help="replay timing: fast (default), realtime, or N (N times faster than recorded)")
    parser.add_argument("--upstream", metavar="URL",
                        help="with --record: the server to record (default: google-genai's base URL)")
    return parser.parse_args(argv)


def _stop_signals() -> threading.Event:
    """An Event set by Ctrl-C or SIGTERM; installed before the address is printed, so a caller that
    reads the address and stops us at once gets a clean exit."""
    done = threading.Event()
    # Handle SIGINT explicitly too: a shell starts background jobs with SIGINT ignored, and
    # SIGTERM (e.g. from a test harness) should stop as cleanly as Ctrl-C.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    return done


def _serve_until_stopped(done: threading.Event, stop) -> None:
    """Block until `done` is set, then call `stop`."""
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while not done.wait(0.5):  # a timed wait keeps Ctrl-C responsive
            pass
    except KeyboardInterrupt:
        pass
    finally:
        stop()


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _local_replies(args: argparse.Namespace) -> LocalReplies | None:
    """The local model's replies if --local was given; ConfigError (what to install) if it cannot run here."""
    return LocalReplies(args.local or None, chunks=args.chunks) if args.local is not None else None


def _record(args: argparse.Namespace) -> int:
    if args.local is not None and args.upstream:
        print("error: give --upstream or --local, not both", file=sys.stderr)
        return 2
    try:
        replies = _local_replies(args)
        local = FakeGemini(default=replies).start() if replies else None  # the upstream with --local
        recorder = Recorder(args.record, local.url if local else args.upstream, host=args.host, port=args.port,
                            log=not args.quiet)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    done = _stop_signals()
    recorder.start()
    print(f"Recording {'the local model' if local else recorder.upstream} into {args.record}", flush=True)
    env = {**recorder.env(), "GEMINI_API_KEY": local.api_key} if local else recorder.env()
    for name, value in env.items():
        print(f"{name}={value}", flush=True)
    _serve_until_stopped(done, recorder.stop)
    if local:
        local.stop()
    print(f"Saved {_plural(len(recorder.cassette.interactions), 'interaction')} to {args.record}", flush=True)
    return 0


def _replay(args: argparse.Namespace) -> int:
    try:
        fake = FakeGemini(host=args.host, port=args.port, cassette=args.cassette, speed=args.speed,
                          log=not args.quiet)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    done = _stop_signals()
    fake.start()
    print(f"FakeGemini replaying {_plural(len(fake.cassette.interactions), 'recorded interaction')} "
          f"from {args.cassette} at {fake.url}", flush=True)
    for name, value in fake.env().items():
        print(f"{name}={value}", flush=True)
    _serve_until_stopped(done, fake.stop)
    if fake.cassette_mismatches:
        print(f"{_plural(len(fake.cassette_mismatches), 'request')} did not match the cassette:", file=sys.stderr)
        for mismatch in fake.cassette_mismatches:
            print(f"  {mismatch}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.record:
        return _record(args)
    if args.cassette:
        return _replay(args)
    if args.local is not None:
        try:
            default = _local_replies(args)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    elif args.reply_text is not None:
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
    done = _stop_signals()
    fake.start()
    print(f"FakeGemini serving at {fake.url}", flush=True)
    for name, value in fake.env().items():
        print(f"{name}={value}", flush=True)
    if scripted:
        print(f"{len(scripted)} scripted repl{'y' if len(scripted) == 1 else 'ies'} queued", flush=True)
    _serve_until_stopped(done, fake.stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
