"""A Batch API job outlives the kernel that submitted it: restart the kernel (jupyter_client's restart, as
JupyterLab's Restart does) while the job is pending, list it with `%agent jobs`, attach it and fetch its
results joined to the rows the old kernel gave."""
from __future__ import annotations

import json

import pytest

from agy_jupyter.testing import FakeGemini, Reply
from agy_jupyter.testing.kernel import Kernel
from test_persistence_kernel import plain_outputs, restart  # tests/ is on sys.path (pytest prepend mode)

SUBMIT = '''
import agy_jupyter as agy
tagger = agy.Agent("tagger", system_instruction="One word per city.")
job = agy.Batch.submit(tagger, ["Oslo", "Lima", "Pune"], rows=[{"id": 1}, {"id": 2}, {"id": 3}])
print(job.name, job.state)
'''
FETCH = '''
import json
import agy_jupyter as agy
job = agy.Batch.attach({name!r})
print(json.dumps({{"state": job.state, "rows": [[r.row, r.text, r.error] for r in job.results()]}}))
'''


@pytest.fixture
def server():
    with FakeGemini() as fake:
        yield fake


@pytest.fixture
def kernel(server, tmp_path):
    k = Kernel(env={**server.env(), "JUPYTER_DATA_DIR": str(tmp_path), "JPY_SESSION_NAME": "/work/cities.ipynb"})
    try:
        k.run("%load_ext agy_jupyter")
        yield k
    finally:
        k.shutdown()


def test_a_job_pending_across_a_kernel_restart_is_listed_attached_and_its_results_fetched(kernel, server):
    name, state = kernel.run(SUBMIT).text().split()
    assert state == "JOB_STATE_PENDING" and server.batches.state(name) == "PENDING"

    restart(kernel, now=False)
    assert kernel.run("print('job' in globals())").text() == "False\n"  # a new process
    listing = plain_outputs(kernel.run("%agent jobs"))
    assert listing.splitlines()[0].split() == ["name", "agent", "state", "rows", "created", "(UTC)"]
    assert [name, "tagger", "PENDING", "3"] == listing.splitlines()[1].split()[:4]

    server.enqueue(Reply.text("Fjords"), Reply.error(503, "overloaded"), Reply.text("Monsoon"))
    server.batches.finish_all()
    fetched = json.loads(kernel.run(FETCH.format(name=name)).text())
    assert fetched == {"state": "JOB_STATE_SUCCEEDED",
                       "rows": [[{"id": 1}, "Fjords", None], [{"id": 2}, None, "[503] overloaded"],
                                [{"id": 3}, "Monsoon", None]]}
    assert "SUCCEEDED" in plain_outputs(kernel.run("%agent jobs")).splitlines()[1]
