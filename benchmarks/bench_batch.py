"""Submitting a Batch API job: building N requests, and the whole submit against the fake server.

  sdk_convert     google-genai converting each request to its JSON, as `client.batches.create` does for
                  every inlined request (its `_InlinedRequest_to_mldev`, the config with a response
                  schema included) (baseline of wire_requests)
  wire_requests   agy_jupyter's requests for a file: one request converted by the same converter, copied
                  with each prompt as its contents, plus the JSONL lines
  submit_inline   `Batch.submit` of INLINE_MAX_REQUESTS rows, inline: the requests built and converted by
                  the SDK, one create call, the job recorded in the store
  submit_file     `Batch.submit` of N rows as a file: the requests built, the JSONL uploaded (the SDK's
                  resumable upload), one create call, the job recorded

Figures are µs per request. Prompts are ~300 characters; the agent has a system instruction and a
two-field pydantic output model. The store is a scratch JUPYTER_DATA_DIR. Rounds rotate the case order.

    python benchmarks/bench_batch.py [--rows 5000] [--rounds 5]
"""
from __future__ import annotations

import os
import tempfile
import time

import _common
from pydantic import BaseModel

import agy_jupyter as agy
from agy_jupyter.agent import batch_requests
from agy_jupyter.testing import FakeGemini
from google.genai import batches as genai_batches

BASELINES = {"wire_requests": "sdk_convert"}


class Label(BaseModel):
    label: str
    score: float


def run(rows: int, rounds: int, verbose: bool) -> dict:
    os.environ["JUPYTER_DATA_DIR"] = tempfile.mkdtemp(prefix="agy-bench-batch-")
    config = agy.build_config(name="labeller", system_instruction="Label the review's sentiment.")
    prompts = [f"Review {i}: " + "the product arrived on time and works as described " * 6 for i in range(rows)]
    inline_rows = batch_requests.INLINE_MAX_REQUESTS
    with FakeGemini() as fake:
        os.environ.update(fake.env())
        api_client = fake.client()._api_client
        inlined = batch_requests.build_requests(config, prompts, Label)

        def per_request(call, count: int):
            def timed() -> float:
                start = _common.clock()
                call()
                return (_common.clock() - start) / count * 1e6
            return timed

        cases = {
            "sdk_convert": per_request(lambda: [genai_batches._InlinedRequest_to_mldev(api_client, r) for r in inlined],
                                       rows),
            "wire_requests": per_request(lambda: batch_requests.jsonl_lines(
                batch_requests.wire_requests(api_client, config, prompts, Label)), rows),
            "submit_inline": per_request(lambda: agy.Batch.submit(config, prompts[:inline_rows], output=Label),
                                         inline_rows),
            "submit_file": per_request(lambda: agy.Batch.submit(config, prompts, output=Label), rows),
        }
        for case in cases.values():  # warm up: the store opened, the SDK paths compiled
            case()
        done = _common.alternate_rounds(cases, rounds, _common.progress_printer(verbose))
    stats = {name: _common.summarize(samples) for name, samples in done.items()}
    out = []
    for name, s in stats.items():
        baseline = BASELINES.get(name)
        out.append(_common.row(name, "µs/request", s, baseline=baseline, spread="max",
                               ratio_value=_common.ratio(s["median"], stats[baseline]["median"]) if baseline else None,
                               best_ratio=_common.ratio(s["min"], stats[baseline]["min"]) if baseline else None))
    notes = [f"submitting {rows:,} rows as a file took {stats['submit_file']['median'] * rows / 1e6:.2f} s "
             f"(median); the SDK's conversion of as many inlined requests alone "
             f"{stats['sdk_convert']['median'] * rows / 1e6:.2f} s"]
    return {"benchmark": "batch", "environment": _common.environment(),
            "params": {"rows": rows, "rounds": rounds, "inline_rows": inline_rows}, "rows": out, "notes": notes}


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=5000, help="rows per submit (default 5000)")
    p.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    args = p.parse_args(argv)
    rows, rounds = (600, 2) if args.quick else (args.rows, args.rounds)
    started = time.monotonic()
    result = run(rows, rounds, args.verbose)
    result["params"]["seconds"] = round(time.monotonic() - started, 1)
    _common.report(result, args)
    return result


if __name__ == "__main__":
    main()
