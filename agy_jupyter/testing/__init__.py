"""Test helpers for agy_jupyter: a fake Gemini API server the real google-genai client can talk to.

    from agy_jupyter.testing import FakeGemini, Reply, Chunk, Usage

    with FakeGemini() as fake:
        fake.enqueue(Reply.text("Hello world", chunks=3))
        client = fake.client()
        ...

Run it standalone with ``python -m agy_jupyter.testing --help``.
"""
from .fake_gemini import Disconnect, FakeGemini, RecordedRequest, normalize_keys
from .replies import Chunk, Reply, Usage

__all__ = ["FakeGemini", "Reply", "Chunk", "Usage", "RecordedRequest", "Disconnect", "normalize_keys"]
