"""The front end in a real JupyterLab + Chromium: time to the first visible glyph, and what streaming costs the page.

One fake Gemini server (this process), one JupyterLab (tests/browser/lab_server.py, the same setup as the
browser tests), one Chromium page and one kernel serve every case, ours and the baselines, in alternating rounds.

  glyph  the server sends its first SSE chunk (request arrival + ttft, ttft = 0.3 s; then 3 more chunks 100 ms
         apart; the first chunk's text is a word made for this round) → the frame that paints that word: a
         MutationObserver sees it added; a change made during a frame's animation callbacks (the widget batches
         its renders there) is painted by that frame, one made in another task (JupyterLab's print output) by
         the next frame, whose start is the time. The page's clock (performance.now) is mapped onto this process's perf_counter (the server's
         clock) by the evaluate round trip with the least delay, before each case (± half that round trip).
           print   baseline: a plain cell of the same notebook iterating google-genai's stream and calling
                   print(chunk.text, flush=True) for each chunk
           chat    `%%chat` (the live widget)
  cpu    the page's main-thread time (Chrome DevTools Protocol Performance.getMetrics, TaskDuration and
         ScriptDuration, thread CPU time) from starting a cell until its output is final and has settled:
           markdown  baseline: `display(Markdown(text))` of the reply's final Markdown (64 KB), rendered once
           chat 1    `%%chat` answered by the same text in one chunk (the widget, then the static copy)
           chat N    `%%chat` answered by the same text in 1,600 chunks, 1 ms apart: what streaming costs
         The text is Markdown (headings, paragraphs, lists, code blocks).

    python benchmarks/bench_frontend.py [--rounds 15] [--cpu-rounds 5] [--quick] [--json PATH]

Needs Playwright and /usr/bin/chromium (the `test` extra; .ci/run installs Chromium).
"""
from __future__ import annotations

import random
import shutil
import statistics
import string
import sys
import tempfile
from pathlib import Path
from typing import Any

import _common

sys.path.insert(0, str(_common.HERE.parent / "tests" / "browser"))  # the browser tests' JupyterLab and page helpers

from conftest import CHROMIUM, CHROMIUM_ARGS, VIEWPORT  # noqa: E402
from lab_page import LabPage  # noqa: E402
from lab_server import LabServer  # noqa: E402

from agy_jupyter.testing import Chunk, FakeGemini, Reply  # noqa: E402

TTFT = 0.3
FIRST_CHUNKS, FIRST_DELAY = 4, 0.1
SIZES = {"full": (64 * 1024, 1600), "quick": (16 * 1024, 400)}
CHUNK_DELAY = 0.001
SETTLE_MS = 500  # after the output is final: late renders (the static copy's Markdown) are counted too
NOTEBOOK = "bench_frontend.ipynb"
SETUP = f"""
import pathlib
from google import genai
from IPython.display import Markdown, display
_bench_client = genai.Client()  # GEMINI_API_KEY and GOOGLE_GEMINI_BASE_URL point it at the fake server
def _bench_print():
    for chunk in _bench_client.models.generate_content_stream(model={_common.MODEL!r}, contents="Go."):
        print(chunk.text, end="", flush=True)
%load_ext agy_jupyter
%agent create writer --model {_common.MODEL}
"""
CELLS = {"setup": 0, "chat": 1, "print": 2, "markdown": 3}
SOURCES = [SETUP, "%%chat writer\nGo.", "_bench_print()", "display(Markdown(pathlib.Path('reply.md').read_text()))"]

# The frame that paints the word: a mutation made during a frame's animation callbacks (the widget batches its
# text renders into one) is painted by that frame; one made in any other task (a websocket message, as JupyterLab
# renders print output) by the next frame. A rAF loop registered before anything else marks the callback phase;
# a MessageChannel task, which runs after that frame's rendering, ends it.
WATCH_JS = """(word) => {
    window.__glyph = null;
    let inFrame = false, pending = null, watching = true;
    const channel = new MessageChannel();
    channel.port1.onmessage = () => { inFrame = false; };
    const loop = () => {
        inFrame = true;
        channel.port2.postMessage(null);
        if (pending !== null) { window.__glyph = {seen: pending, frame: performance.now()}; watching = false; }
        if (watching) requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
    const has = (node) => (node.nodeType === Node.TEXT_NODE ? node.data : node.textContent || '').includes(word);
    const observer = new MutationObserver((records) => {
        for (const record of records) {
            if (record.type === 'characterData' ? has(record.target) : [...record.addedNodes].some(has)) {
                const now = performance.now();
                observer.disconnect();
                if (inFrame) { window.__glyph = {seen: now, frame: now}; watching = false; } else { pending = now; }
                return;
            }
        }
    });
    observer.observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


def markdown_text(size: int) -> str:
    """Markdown of about `size` bytes: sections with a heading, paragraphs, a list and a code block."""
    parts, i = [], 0
    while sum(map(len, parts)) < size:
        i += 1
        parts.append(f"## Section {i}\n\nThe quarterly figures for region {i} rose by **{i % 7 + 2}%**, led by "
                     f"`product_{i}` and steady demand. Costs stayed flat; see the table below for details.\n\n"
                     f"- first point about {i}\n- second point, with *emphasis*\n- a third point\n\n"
                     f"```python\ntotal_{i} = sum(values[{i}:]) / {i + 1}\nprint(total_{i})\n```\n\n")
    return "".join(parts)[:size]


def fresh_word() -> str:
    return "glyph" + "".join(random.choices(string.ascii_lowercase, k=8))


class Bench:
    def __init__(self, page: LabPage, lab: LabServer, fake: FakeGemini):
        self.page, self.lab, self.fake = page, lab, fake
        self.cdp = page.context.new_cdp_session(page.page)
        self.cdp.send("Performance.enable", {"timeDomain": "threadTicks"})  # durations as thread CPU time

    def page_offset(self, samples: int = 15) -> tuple[float, float]:
        """perf_counter − performance.now()/1000 from the round trip with the least delay, and that delay."""
        best = (float("inf"), 0.0)
        for _ in range(samples):
            before = _common.clock()
            now_ms = self.page.page.evaluate("() => performance.now()")
            after = _common.clock()
            best = min(best, (after - before, (before + after) / 2 - now_ms / 1000))
        return best[1], best[0]

    def run_and_wait(self, cell: int, timeout: float = 120.0) -> None:
        before = {cell: self.page.prompts()[cell]}
        self.page.start_cell(cell)
        self.page.wait_for_cells(range(cell, cell + 1), before, timeout)

    def glyph(self, case: str) -> float:
        """Seconds from the server's first chunk to the frame that shows it."""
        word = fresh_word()
        self.fake.enqueue(Reply(chunks=[Chunk.text(word + " ")] + [Chunk.text(f"more words {i}. ")
                                                                   for i in range(FIRST_CHUNKS - 1)],
                                ttft=TTFT, delay=FIRST_DELAY))
        self.page.page.evaluate(WATCH_JS, word)
        offset, _ = self.page_offset()
        requests = len(self.fake.requests)
        self.run_and_wait(CELLS[case])
        self.page.page.wait_for_function("() => window.__glyph !== null", timeout=30_000)
        seen = self.page.page.evaluate("() => window.__glyph")
        first_chunk = self.fake.requests[requests].time + TTFT
        return seen["frame"] / 1000 + offset - first_chunk

    def metrics(self) -> dict[str, float]:
        return {m["name"]: m["value"] for m in self.cdp.send("Performance.getMetrics")["metrics"]}

    def cpu(self, case: str, text: str, chunks: int) -> dict[str, float]:
        """The page's main-thread seconds (task, script) for one run of a cell."""
        if case != "markdown":
            self.fake.enqueue(Reply.text(text, chunks=chunks, delay=CHUNK_DELAY if chunks > 1 else 0.0))
        self.page.page.wait_for_timeout(SETTLE_MS)
        before = self.metrics()
        self.run_and_wait(CELLS["markdown" if case == "markdown" else "chat"])
        self.page.page.wait_for_timeout(SETTLE_MS)
        after = self.metrics()
        return {name: after[name] - before[name] for name in ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")}


def run(rounds: int, cpu_rounds: int, size: tuple[int, int], verbose: bool) -> dict[str, Any]:
    progress = _common.progress_printer(verbose)
    text = markdown_text(size[0])
    sync_playwright = __import__("playwright.sync_api", fromlist=["sync_playwright"]).sync_playwright
    workdir = Path(tempfile.mkdtemp(prefix="bench-frontend-"))
    with FakeGemini() as fake:
        lab = LabServer(workdir, env={**fake.env(), "AGY_CHAT_TIMEOUT_SECS": "60"}).start()
        try:
            (lab.root / "reply.md").write_text(text)
            lab.write_notebook(NOTEBOOK, SOURCES)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                context = browser.new_context(viewport=VIEWPORT)
                page = LabPage(context, lab)
                page.open(NOTEBOOK)
                page.run_cell(CELLS["setup"])
                bench = Bench(page, lab, fake)
                bench.glyph("chat"), bench.glyph("print")  # warm-up: the widget's modules, the SDK's connection
                glyph = _common.alternate_rounds({"print": lambda: bench.glyph("print"),
                                                  "chat": lambda: bench.glyph("chat")}, rounds, progress)
                cpu = _common.alternate_rounds({
                    "markdown": lambda: bench.cpu("markdown", text, 1),
                    "chat 1": lambda: bench.cpu("chat 1", text, 1),
                    f"chat {size[1]}": lambda: bench.cpu("chat N", text, size[1])}, cpu_rounds, progress)
                offset_delay = bench.page_offset()[1]
                assert page.foreign_requests == [] and page.dialogs == []
                browser.close()
        finally:
            lab.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    return {"benchmark": "frontend", "environment": _common.environment(),
            "params": {"rounds": rounds, "cpu_rounds": cpu_rounds, "text_bytes": len(text), "chunks": size[1],
                       "ttft": TTFT, "settle_ms": SETTLE_MS, "clock_round_trip_ms": offset_delay * 1e3},
            "data": {"glyph": glyph, "cpu": cpu}}


def ms_stats(values: list[float]) -> dict[str, float]:
    values = [v * 1e3 for v in values]
    return {**_common.summarize(values), "p90": _common.percentile(values, 90)}


def rows_for(result: dict[str, Any]) -> list[dict]:
    glyph, cpu = result["data"]["glyph"], result["data"]["cpu"]
    base = ms_stats(glyph["print"])
    rows = [_common.row("first glyph visible − server's first chunk: print() cell", "ms", base, spread="p90")]
    chat = ms_stats(glyph["chat"])
    rows.append(_common.row("first glyph visible − server's first chunk: %%chat", "ms", chat, spread="p90",
                            baseline="print() cell", ratio_value=_common.ratio(chat["median"], base["median"]),
                            best_ratio=_common.ratio(chat["min"], base["min"])))
    label = f"{result['params']['text_bytes'] // 1024} KB"
    for metric, title in (("TaskDuration", "main-thread CPU"), ("ScriptDuration", "script CPU")):
        stats = {case: ms_stats([s[metric] for s in samples]) for case, samples in cpu.items()}
        base = stats["markdown"]
        rows.append(_common.row(f"{title}, {label}: display(Markdown) once", "ms", base, spread="max"))
        for case in [c for c in cpu if c != "markdown"]:
            rows.append(_common.row(f"{title}, {label}: %%chat in {case.split()[1]} chunk(s)", "ms", stats[case],
                                    spread="max", baseline="Markdown once",
                                    ratio_value=_common.ratio(stats[case]["median"], base["median"]),
                                    best_ratio=_common.ratio(stats[case]["min"], base["min"])))
    return rows


def notes_for(result: dict[str, Any]) -> list[str]:
    glyph = {case: statistics.median(v) * 1e3 for case, v in result["data"]["glyph"].items()}
    cpu = result["data"]["cpu"]
    def medians(metric: str) -> str:
        return ", ".join(f"{case} {statistics.median(s[metric] for s in samples) * 1e3:.0f}" for case, samples in cpu.items())
    return [f"first glyph: %%chat − print() cell = {glyph['chat'] - glyph['print']:.1f} ms (medians); the page clock "
            f"is mapped with a {result['params']['clock_round_trip_ms']:.1f} ms round trip",
            f"layout ms (median): {medians('LayoutDuration')}; style recalculation ms: {medians('RecalcStyleDuration')}"]


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15, help="first-glyph rounds (default 15)")
    p.add_argument("--cpu-rounds", type=int, default=5, help="CPU rounds (default 5)")
    args = p.parse_args(argv)
    if args.quick:
        result = run(2, 1, SIZES["quick"], args.verbose)
    else:
        result = run(args.rounds, args.cpu_rounds, SIZES["full"], args.verbose)
    result["rows"] = rows_for(result)
    result["notes"] = notes_for(result)
    _common.report(result, args)
    return result


if __name__ == "__main__":
    main()
