"""The fake Gemini server for throughput runs, in this process or in a child process.

Every request is answered by `sized_reply`: the prompt "chunks=N" gets a text reply streamed in N
chunks with no delay, so one server serves every size and no reply has to be queued per request.

TCP_NODELAY: as shipped, FakeGemini's handler leaves Nagle's algorithm on, so a small write that follows
another (the first SSE chunk after the headers) waits for the client's delayed ACK: about 40 ms per
request, the same for every case, which would blur chunk rates. `without_nagle()` turns it off for
the benchmarks' servers (a no-op once the fake server does it itself).

In this process, the server's handler thread shares our GIL: its per-chunk work (json.dumps, select,
sendall) is added to every case alike and dilutes the ratios towards 1. In a child process it runs on
the other core and the client side is measured alone; that is the default.

    python benchmarks/_fake_server.py   # prints the URL on one line, serves until stdin closes
"""
from __future__ import annotations

import functools
import re
import subprocess
import sys
from typing import Any

from agy_jupyter.testing import FakeGemini, RecordedRequest, Reply
from agy_jupyter.testing import fake_gemini

CHUNK_TEXT = "lorem ipsum dolor si"  # 20 characters: a few tokens, like one real streamed chunk
_SIZE = re.compile(r"chunks=(\d+)")


def prompt_for(chunks: int) -> str:
    return f"chunks={chunks}"


@functools.lru_cache(maxsize=None)
def _reply(chunks: int) -> Reply:
    # Built once per size: building 10,000 Chunk objects per request would be server time in the figures.
    return Reply.text(CHUNK_TEXT * chunks, chunks=chunks)


def sized_reply(request: RecordedRequest) -> Reply:
    match = _SIZE.search(request.last_user_text)
    return _reply(int(match[1])) if match else Reply.text("send chunks=N")


def without_nagle() -> None:
    """Set TCP_NODELAY on the fake server's connections (see the module docstring)."""
    fake_gemini._Handler.disable_nagle_algorithm = True  # socketserver.StreamRequestHandler's own switch


class InProcessServer:
    """FakeGemini in a thread of this process."""

    mode = "thread"

    def __init__(self) -> None:
        without_nagle()
        self.fake = FakeGemini(default=sized_reply).start()
        self.url = self.fake.url
        self.api_key = self.fake.api_key

    def close(self) -> None:
        self.fake.stop()


class ChildProcessServer:
    """FakeGemini in a child process (this file run as a script); stops when we close its stdin."""

    mode = "process"

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http://"):
            self.proc.kill()
            raise RuntimeError(f"fake server process did not start (printed {line!r})")
        self.url = line
        self.api_key = fake_gemini.DEFAULT_API_KEY  # what the child's FakeGemini() accepts

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start(mode: str) -> Any:
    return ChildProcessServer() if mode == "process" else InProcessServer()


def _serve() -> None:
    without_nagle()
    with FakeGemini(default=sized_reply) as fake:
        print(fake.url, flush=True)
        sys.stdin.read()  # EOF when the parent closes the pipe or dies


if __name__ == "__main__":
    _serve()
