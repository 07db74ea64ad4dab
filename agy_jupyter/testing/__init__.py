"""Test helpers for agy_jupyter: a fake Gemini API server the real google-genai client can talk to.

    from agy_jupyter.testing import FakeGemini, Reply, Chunk, Usage

    with FakeGemini() as fake:
        fake.enqueue(Reply.text("Hello world", chunks=3))
        client = fake.client()
        ...

Record a real session once and replay it offline (see :mod:`.cassette` and :mod:`.recorder`)::

    from agy_jupyter.testing import record, replay

    with record("session.json"):            # through a proxy to the real API, key scrubbed
        ...
    with replay("session.json"):            # a FakeGemini answering from the cassette
        ...

Without a key, ``FakeGemini(default=local_replies())`` answers with the embedded local model, so
``record(path, upstream=that_fake)`` makes a cassette of its answers (see :mod:`.local_replies`).

Run it standalone with ``python -m agy_jupyter.testing --help``.
"""
from .cassette import Cassette, CassetteMismatch, CassetteMismatchError
from .fake_gemini import Disconnect, FakeGemini, RecordedRequest, normalize_keys
from .local_replies import LocalReplies, local_replies
from .recorder import Recorder, record
from .replay import replay
from .replies import Chunk, Reply, Usage

__all__ = ["FakeGemini", "Reply", "Chunk", "Usage", "RecordedRequest", "Disconnect", "normalize_keys",
           "record", "replay", "Recorder", "Cassette", "CassetteMismatch", "CassetteMismatchError"]
__all__ += ["local_replies", "LocalReplies"]
