"""`replay()`: serve a cassette from a FakeGemini whose address is in the environment meanwhile.

    from agy_jupyter.testing import replay

    with replay("session.json") as fake:     # GOOGLE_GEMINI_BASE_URL / GEMINI_API_KEY point at it
        agent = agy.Agent("demo")            # created inside the block
        agent.chat("Say hi")                 # answered from the cassette, offline
    # leaving the block raises CassetteMismatchError if a request was not in the cassette

A kernel started inside the block inherits the variables, so a notebook can run headless
(nbclient) against its cassette.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator, Mapping

from .cassette import Speed
from .fake_gemini import FakeGemini

__all__ = ["replay", "patched_environ"]


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block, then put back what was there."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def replay(path: str | os.PathLike, speed: Speed = "fast", *, complete: bool = False,
           set_env: bool = True) -> Iterator[FakeGemini]:
    """Replay the cassette at `path`; with `complete`, every recording must also be requested."""
    with FakeGemini(cassette=path, speed=speed) as fake:
        if set_env:
            with patched_environ(fake.env()):
                yield fake
        else:
            yield fake
        if complete:
            fake.verify_cassette(complete=True)
