"""What a streamed turn leaves behind: per-chunk objects die with the turn and its stream, and the reply's
text is kept once. Structural checks (objects counted with gc, strings compared by identity), not sizes:
the figures are in benchmarks/bench_scale.py. Through the real google-genai client against the fake server.
"""
from __future__ import annotations

import dataclasses
import gc

from google.genai import types

from agy_jupyter.agent import events
from agy_jupyter.agent.events import TextDelta
from agy_jupyter.testing import Chunk, Reply

CHUNKS = 200


def alive(kind: type) -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if type(obj) is kind)


def test_a_finished_turn_keeps_no_per_chunk_objects_once_its_stream_is_dropped(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply.text("piece " * CHUNKS, chunks=CHUNKS))
    before = {kind: alive(kind) for kind in (TextDelta, types.GenerateContentResponse, types.Candidate)}
    stream = agent.stream("talk")
    assert sum(isinstance(event, TextDelta) for event in stream) == CHUNKS
    assert alive(TextDelta) >= before[TextDelta] + CHUNKS  # the stream keeps its events for late readers
    del stream
    after = {kind: alive(kind) for kind in before}
    assert after == before
    assert len(agent.history()[-1].parts) == 1  # the chunks' parts were merged into one


def test_a_finished_turn_keeps_its_reply_text_once(fake, make_agent):
    agent = make_agent()
    fake.enqueue(Reply.text("piece " * CHUNKS, chunks=CHUNKS))
    response = agent.chat("talk")
    stored = agent.history()[-1].parts[0].text
    assert response.text == "piece " * CHUNKS
    assert response.text is stored and agent.last_turn().text is stored and agent.last_response() is stored


def test_a_reply_in_several_parts_reads_as_its_whole_text(fake, make_agent):
    agent = make_agent()
    # a signature closes the merged part: the reply is kept as a thought and two text parts
    fake.enqueue(Reply(chunks=[Chunk.thought("hmm"), Chunk.text("one, "), Chunk.text("two", thought_signature=b"s"),
                               Chunk.text(", three")]))
    response = agent.chat("talk")
    parts = agent.history()[-1].parts
    assert [(part.text, bool(part.thought)) for part in parts] == [("hmm", True), ("one, two", False),
                                                                  (", three", False)]
    assert response.text == "one, two, three" and response.thoughts == "hmm"


def test_every_event_is_slotted():
    """A stream keeps one event per chunk: no instance dict on any of them."""
    classes = [cls for cls in vars(events).values()
               if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == events.__name__]
    assert len(classes) >= 11
    for cls in classes:
        assert "__slots__" in vars(cls), cls.__name__
