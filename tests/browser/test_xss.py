"""Model output must not run script or fetch anything in JupyterLab: the corpus in a real Chromium.

Every payload of tests/xss_corpus.py comes back from the fake Gemini server as a thought, as the argument
of a tool call, as that tool's result and as reply text: one model request per payload, ten requests per
`%%chat` cell, each payload in text blocks of its own (a tool call separates them, so an unclosed fence
cannot hide the next payload). It goes through (a) the live widget, (b) the static copy that
replaces it, (c) `%agent history`, (d) the saved notebook, closed and reopened (its outputs are trusted
then, so JupyterLab renders them unsanitized). After each stage: no payload set the page flag, no dialog
opened, no request left 127.0.0.1, no element that runs or fetches is in our outputs, and every reply's
marker is shown. A positive control (an output that sets the flag, opens an alert and fetches from
evil.example on purpose) proves the page would notice.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from agy_jupyter.testing import Chunk, Reply
from xss_corpus import BY_ID, EVIL_HOST, PAYLOADS, TEMPLATES  # tests/ is on sys.path (its conftest.py)

PAGE_CHECKS = (Path(__file__).with_name("page_checks.js")).read_text()
NOTEBOOK = "xss.ipynb"
CONTROL_URL = f"https://{EVIL_HOST}/control.png"
CONTROL = ("from IPython.display import HTML\n"
           "HTML('<img src=\"%s\" onerror=\"top.__agyPwned=(top.__agyPwned||[]).concat(\\'control\\');"
           "alert(\\'control\\')\">')" % CONTROL_URL)
CONTROL_EFFECTS = (["control"], ["alert: control"], [CONTROL_URL])  # flag, dialogs, foreign requests
GROUP_SIZE = 10    # payloads per %%chat cell: one model request (thought, text, tool call) each
DONE = "AGYDONE"   # the last words of a reply: the page clicks Stop when it sees them rendered
TAIL = 20          # then a slow tail: the reply ends by itself after TAIL * TAIL_DELAY s if nobody clicks Stop
TAIL_DELAY = 0.25
SETTLE_MS = 500    # after a stage, time for late handlers (onerror of a failed load) to fire
CLASSES = list(TEMPLATES)


def agent_name(cls: str) -> str:
    return f"xss{CLASSES.index(cls)}"  # one agent per class keeps each history short


def payload_groups() -> list[list]:
    """Payloads in cells: one class per cell, at most GROUP_SIZE per cell."""
    groups = []
    for cls in CLASSES:
        members = [p for p in PAYLOADS if p.cls == cls]
        groups += [members[i:i + GROUP_SIZE] for i in range(0, len(members), GROUP_SIZE)]
    return groups


def setup_cell() -> str:
    lines = ["def echo_tool(text: str) -> dict:", '    """Return the text it was given."""',
             "    return {'echo': text}", "%load_ext agy_jupyter"]
    lines += [f"%agent create {agent_name(cls)} --policy allow --tools echo_tool" for cls in CLASSES]
    return "\n".join(lines)


def _has(content: dict, key: str) -> bool:
    return any(key in part for part in content.get("parts", []))


def scripted_reply(request) -> Reply:
    """Model request k of the turn whose prompt lists payload ids: payload k as a thought, as text and as a
    tool call (whose result comes back in request k + 1); after the last one, DONE and a slow tail.
    Each payload is its own text block (a tool call separates them), so one cannot hide the next."""
    contents = request.contents
    prompt_at = max(i for i, c in enumerate(contents) if c.get("role", "user") == "user" and _has(c, "text"))
    ids = [int(n) for n in re.findall(r"AGYP(\d+)X", request.last_user_text)]
    step = sum(_has(c, "functionResponse") for c in contents[prompt_at + 1:])
    if step == len(ids):
        return Reply(chunks=[Chunk.text(DONE), *[Chunk.text(" .") for _ in range(TAIL)]], delay=TAIL_DELAY)
    pid = ids[step]
    payload = BY_ID[pid].text
    return Reply(chunks=[Chunk.thought(f"{payload}\n\nAGYT{pid}X"), Chunk.text(f"{payload}\n\nAGYM{pid}X\n\n"),
                         Chunk.function_call("echo_tool", {"text": payload}, id=f"call-{pid}")])


class Stages:
    """Cell indices and the checks run after each stage."""

    def __init__(self, page):
        self.page = page
        self.failures: list[str] = []  # every stage is checked; the test fails at the end with all of them
        self.groups = payload_groups()
        self.first_chat = 2
        self.last_chat = self.first_chat + len(self.groups) - 1
        self.cell_of = {p.id: self.first_chat + k for k, group in enumerate(self.groups) for p in group}
        self.histories = {cls: self.last_chat + 1 + k for k, cls in enumerate(CLASSES)}

    def cells(self) -> list[str]:
        chats = [f"%%chat {agent_name(group[0].cls)}\n" + " ".join(f"AGYP{p.id}X" for p in group)
                 for group in self.groups]
        histories = [f"%agent history {agent_name(cls)}" for cls in CLASSES]
        return [CONTROL, setup_cell(), *chats, *histories]

    def assert_nothing_ran(self, stage: str, expected=([], [], [])) -> None:
        page = self.page.page
        page.wait_for_timeout(SETTLE_MS)
        flag, dialogs, requests = expected
        pwned = self.page.pwned() or []
        ran = [f"{pid}: {BY_ID[pid].cls}: {BY_ID[pid].text[:120]!r}" for pid in pwned if pid != "control"]
        self.check(sorted(map(str, pwned)) == sorted(flag) and not ran, f"{stage}: payloads executed ({pwned}):", ran)
        self.check(sorted(set(self.page.dialogs)) == dialogs, f"{stage}: dialogs opened:", self.page.dialogs)
        self.check(sorted(set(self.page.foreign_requests)) == requests, f"{stage}: requests left 127.0.0.1:",
                   sorted(set(self.page.foreign_requests)))
        unsafe = page.evaluate("""(first) => [...document.querySelectorAll('.jp-Notebook .jp-Cell')].slice(first)
            .flatMap((cell, i) => [...cell.querySelectorAll('.jp-OutputArea-output *')]
              .map((el) => window.__agyUnsafe(el, false)).filter(Boolean).map((why) => `cell ${i + first}: ${why}`))""",
                               self.first_chat)
        self.check(unsafe == [], f"{stage}: active elements in the outputs:", unsafe)
        # each stage reports what happened during it
        self.page.reset_pwned()
        self.page.dialogs.clear()
        self.page.foreign_requests.clear()

    def check(self, ok: bool, what: str, details: list[str]) -> None:
        if not ok:
            self.failures.append("\n  ".join([f"{what} ({len(details)})", *map(str, details[:40])]))

    def assert_markers_shown(self, stage: str, cells: dict[int, list[str]], visible: bool = True) -> None:
        texts = self.page.page.evaluate(
            """([indices, visible]) => { const cells = document.querySelectorAll('.jp-Notebook .jp-Cell');
               return indices.map((i) => { const out = cells[i].querySelector('.jp-OutputArea');
                 return out ? (visible ? out.innerText : out.textContent) : ''; }); }""",
            [list(cells), visible])
        missing = [f"cell {i}: {m}" for (i, markers), text in zip(cells.items(), texts) for m in markers if m not in text]
        self.check(not missing, f"{stage}: replies not shown:", missing)

    def _markers(self, kind: str) -> dict[int, list[str]]:
        cells: dict[int, list[str]] = {}
        for p in PAYLOADS:
            cells.setdefault(self.cell_of[p.id], []).append(f"AGY{kind}{p.id}X")
        return cells

    def reply_markers(self) -> dict[int, list[str]]:
        return self._markers("M")

    def thought_markers(self) -> dict[int, list[str]]:
        return self._markers("T")

    def history_markers(self) -> dict[int, list[str]]:
        return {index: [m for p in PAYLOADS if p.cls == cls for m in (f"AGYP{p.id}X", f"AGYM{p.id}X")]
                for cls, index in self.histories.items()}


@pytest.mark.timeout(600)
def test_no_payload_runs_or_fetches_in_any_stage(lab, lab_page, fake_gemini, tmp_path):
    started = time.monotonic()
    fake_gemini.default = scripted_reply
    stages = Stages(lab_page)
    lab.write_notebook(NOTEBOOK, stages.cells())
    lab_page.add_init_script(PAGE_CHECKS)
    lab_page.open(NOTEBOOK)

    # The positive control: the page notices a flag, a dialog and a foreign request; then start clean.
    lab_page.run_cell(0)
    lab_page.page.wait_for_function("() => (window.__agyPwned ?? []).includes('control')", timeout=10_000)
    stages.assert_nothing_ran("control", CONTROL_EFFECTS)
    assert not stages.failures, "the positive control was not seen as expected:\n" + "\n".join(stages.failures)
    lab_page.run_cell(1)

    # (a) the live widget and (b) the static copy that replaces it
    lab_page.run_cells(stages.first_chat, stages.last_chat)
    live = lab_page.page.evaluate("() => ({seen: [...__agyLive.seen], unsafe: [...__agyLive.unsafe]})")
    expected_live = {f"AGY{kind}{p.id}X" for p in PAYLOADS for kind in "MT"}
    not_seen = sorted(expected_live - set(live["seen"]), key=lambda m: int(m[4:-1]))
    stages.check(not not_seen, "live widget: replies never rendered as Markdown:", not_seen)
    stages.check(live["unsafe"] == [], "live widget: active elements in the Markdown:", live["unsafe"])
    stages.assert_nothing_ran("live widget and static copy")
    stages.assert_markers_shown("static copy", stages.reply_markers())
    stages.assert_markers_shown("static copy thoughts", stages.thought_markers(), visible=False)

    # (c) %agent history
    history = list(stages.histories.values())
    lab_page.run_cells(history[0], history[-1])
    stages.assert_nothing_ran("%agent history")
    stages.assert_markers_shown("%agent history", stages.history_markers())

    # (d) saved, closed and reopened: trusted outputs, rendered unsanitized (the control runs again)
    lab_page.save()
    lab_page.reset_pwned()
    lab_page.close_and_reopen()
    lab_page.page.wait_for_function("() => (window.__agyPwned ?? []).includes('control')", timeout=30_000)
    stages.assert_nothing_ran("reopened notebook", CONTROL_EFFECTS)
    stages.assert_markers_shown("reopened static copy", stages.reply_markers())
    stages.assert_markers_shown("reopened history", stages.history_markers())
    lab_page.screenshot(tmp_path / "xss-reopened.png")
    print(f"{len(PAYLOADS)} payloads through 4 stages in {time.monotonic() - started:.0f} s")
    assert not stages.failures, "\n".join(stages.failures)
