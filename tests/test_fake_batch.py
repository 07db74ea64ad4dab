"""The fake server's Batch and Files APIs, driven by google-genai's own client calls (no agy_jupyter code)."""
from __future__ import annotations

import io

import pytest
from google.genai import errors, types

from agy_jupyter.testing import FakeGemini, Reply


@pytest.fixture
def fake():
    with FakeGemini() as server:
        yield server


def test_a_file_larger_than_one_upload_chunk_arrives_whole(fake):
    client = fake.client()
    data = bytes(range(256)) * (9 * 1024 * 1024 // 256 + 3)  # over the SDK's 8 MB chunk: two upload commands
    uploaded = client.files.upload(file=io.BytesIO(data), config={"mime_type": "jsonl", "display_name": "big"})
    assert uploaded.name.startswith("files/") and uploaded.size_bytes == len(data)
    assert uploaded.display_name == "big" and uploaded.state == types.FileState.ACTIVE
    assert bytes(fake.batches.files[uploaded.name].data) == data


def test_jobs_are_listed_newest_first_across_pages_and_deleted(fake):
    client = fake.client()
    names = []
    for i in range(3):
        job = client.batches.create(model="gemini-2.5-flash", src=[{"contents": [{"parts": [{"text": f"q{i}"}]}]}],
                                    config={"display_name": f"job{i}"})
        names.append(job.name)
        fake.batches.advance(1)
    listed = [j.name for j in client.batches.list(config={"page_size": 2})]  # the pager fetches page two
    assert listed == names[::-1]
    client.batches.delete(name=names[0])
    assert [j.display_name for j in client.batches.list()] == ["job2", "job1"]
    with pytest.raises(errors.ClientError) as missing:
        client.batches.get(name=names[0])
    assert missing.value.code == 404


def test_states_follow_the_clock_and_answers_come_from_the_reply_queue(fake):
    client = fake.client()
    fake.batches.pending_seconds, fake.batches.running_seconds = 10, 20
    fake.enqueue(Reply.text("first"))
    job = client.batches.create(model="gemini-2.5-flash",
                                src=[{"contents": [{"parts": [{"text": "a"}]}]}, {"contents": [{"parts": [{"text": "b"}]}]}])
    states = []
    for step in (9, 1, 19, 1):
        fake.batches.advance(step)
        states.append(client.batches.get(name=job.name).state.value)
    assert states == ["JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"]
    done = client.batches.get(name=job.name)
    assert [r.response.text for r in done.dest.inlined_responses] == ["first", "You said: b"]
    assert done.create_time is not None and done.end_time > done.create_time
    client.batches.cancel(name=job.name)  # cancelling an ended job changes nothing
    assert client.batches.get(name=job.name).state.value == "JOB_STATE_SUCCEEDED"
