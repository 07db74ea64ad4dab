import { accessibleName, activeContent, button, fakeModel, loadBundle, nextFrame, renderView } from "./dom_env.mjs";
import assert from "node:assert/strict";
import { test } from "node:test";

const view = await loadBundle("stream_view.js");
const assetsWidget = await loadBundle("agy_assets.js"); // publishes the Markdown renderer on import
const ops = (list, reset = false) => ({ type: "ops", ops: list, reset });
const blocks = (el) => [...el.querySelector(".agy-body").children];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const note = (el) => el.querySelector(".agy-assets-note");
const announced = () => document.getElementById("agy-announcer")?.textContent;

/** Run `fn` in a page where the assets have not been published yet (restored afterwards). */
async function withoutAssets(fn, timeoutMs) {
  const saved = globalThis.__agyAssets;
  delete globalThis.__agyAssets;
  if (timeoutMs !== undefined) globalThis.__agyAssetsTimeoutMs = timeoutMs;
  try {
    await fn();
  } finally {
    globalThis.__agyAssets = saved;
    delete globalThis.__agyAssetsTimeoutMs;
  }
}

async function setup(traits = { agent: "helper", model_name: "gemini-2.5-flash", show_thoughts: true }) {
  const model = fakeModel(traits);
  const { el, cleanup } = await renderView(view, model);
  return { model, el, cleanup };
}

test("renders the header and asks the kernel for a replay", async () => {
  const { model, el } = await setup();
  assert.deepEqual(model.sent, [{ type: "rendered" }]);
  assert.equal(el.querySelector(".agy-agent").textContent, "helper");
  assert.equal(el.querySelector(".agy-model").textContent, "gemini-2.5-flash");
  model.set("agent", "critic");
  assert.equal(el.querySelector(".agy-agent").textContent, "critic");
});

test("text, tool call, tool result, text appear in that order", async () => {
  const { model, el } = await setup();
  model.receive(ops([["text", "Let me "], ["text", "**add** them."]]));
  model.receive(ops([
    ["tool_call", { id: "c1", name: "add", args: { a: 2, b: 3 } }],
    ["tool_result", { id: "c1", name: "add", status: "ok", result: { sum: 5 } }],
    ["text", "The sum is <b onmouseover=alert(1)>5</b>."],
  ]));
  await nextFrame();
  const [first, call, second] = blocks(el);
  assert.equal(blocks(el).length, 3);
  assert.ok(first.classList.contains("agy-text"));
  assert.equal(first.querySelector("strong").textContent, "add");
  assert.ok(call.classList.contains("agy-tool"));
  assert.equal(call.querySelector(".agy-tool-name").textContent, "add");
  assert.deepEqual(JSON.parse(call.querySelector(".agy-tool-args").textContent), { a: 2, b: 3 });
  assert.equal(call.dataset.status, "ok");
  assert.deepEqual(JSON.parse(call.querySelector(".agy-tool-result pre").textContent), { sum: 5 });
  assert.ok(second.classList.contains("agy-text"));
  assert.equal(second.textContent.trim(), "The sum is <b onmouseover=alert(1)>5</b>.");  // HTML shown as text
  assert.deepEqual(activeContent(second), []);
});

test("Gemini's code runs show code and output; cited sources are links only for http(s), titles as text", async () => {
  const { model, el } = await setup();
  model.receive(ops([
    ["text", "Let me run it."],
    ["code", { id: null, code: "print('<img src=x onerror=alert(1)>')", language: "python" }],
  ]));
  const run = blocks(el)[1];
  assert.ok(run.classList.contains("agy-code-run"));
  assert.equal(run.dataset.status, "running");
  await nextFrame();
  const highlighted = run.querySelector("pre code");  // highlighted as Python, its text as written, no markup run
  assert.equal(highlighted.textContent.trim(), "print('<img src=x onerror=alert(1)>')");
  assert.ok(highlighted.querySelector("[class^=hljs]"), highlighted.outerHTML);
  assert.equal(run.querySelector("img"), null);
  assert.equal(run.querySelector(".agy-tool-status").textContent, "running…");
  model.receive(ops([
    ["code_result", { id: null, code: "", language: "python", outcome: "deadline_exceeded", output: "<b>late</b>" }],
    ["text", "Sources below."],
    ["citations", { sources: [
      { title: "<img src=x onerror=alert(2)>", uri: "https://example.org/a?b=1&c=2" },
      { title: "Bad", uri: "javascript:alert(3)" },
      { title: "", uri: "https://example.com/" },
    ], supports: [{ text: "claim", sources: [0] }], queries: ["q"] }],
  ]));
  await nextFrame();
  assert.equal(blocks(el).length, 4);
  assert.equal(run.dataset.status, "error");
  assert.equal(run.querySelector(".agy-tool-status").textContent, "deadline exceeded");
  const [code, output] = run.querySelectorAll("pre");
  assert.equal(code.textContent.trimEnd(), "print('<img src=x onerror=alert(1)>')");  // a fenced block ends in \n
  assert.equal(output.textContent, "<b>late</b>");
  const cited = blocks(el)[3];
  assert.ok(cited.classList.contains("agy-citations"));
  const links = [...cited.querySelectorAll("a")];
  assert.deepEqual(links.map((a) => [a.getAttribute("href"), a.textContent]),
    [["https://example.org/a?b=1&c=2", "<img src=x onerror=alert(2)>"], ["https://example.com/", "https://example.com/"]]);
  assert.ok(links.every((a) => a.rel === "noopener noreferrer"));
  assert.deepEqual([...cited.querySelectorAll("li")].map((li) => li.textContent)[1], "Bad");
  assert.deepEqual(activeContent(el.querySelector(".agy-body")), []);
});

test("tool args are text, not HTML; long results are collapsed; results without ids find their call", async () => {
  const { model, el } = await setup();
  const long = Array.from({ length: 50 }, (_, i) => `line ${i}`);
  model.receive(ops([
    ["tool_call", { name: "shell", args: { cmd: "<img src=x onerror=alert(1)>" } }],
    ["tool_call", { name: "read", args: {} }],
    ["tool_result", { name: "read", status: "error", result: { lines: long } }],
    ["tool_result", { name: "shell", status: "denied", result: { reason: "no" } }],
  ]));
  const [shell, read] = blocks(el);
  assert.equal(shell.querySelector("img"), null);
  assert.ok(shell.querySelector(".agy-tool-args").textContent.includes("<img src=x onerror=alert(1)>"));
  assert.equal(shell.dataset.status, "denied");
  assert.equal(read.dataset.status, "error");
  const details = read.querySelector("details.agy-tool-result");
  assert.ok(details && !details.open, "a long result is a collapsed <details>");
  assert.match(details.querySelector("summary").textContent, /^Result \(\d+ lines\)$/);
});

test("thoughts are collapsed by default and hidden when show_thoughts is false", async () => {
  const { model, el } = await setup();
  model.receive(ops([["thought", "Considering "], ["thought", "options"], ["text", "Answer"]]));
  await nextFrame();
  const thoughts = el.querySelector("details.agy-thoughts");
  assert.equal(thoughts.open, false);
  assert.equal(thoughts.querySelector("summary").textContent, "Thoughts");
  assert.equal(thoughts.querySelector(".agy-thought-text").textContent.trim(), "Considering options");
  assert.equal(el.querySelectorAll(".agy-thoughts").length, 1);
  model.set("show_thoughts", false);
  assert.ok(el.querySelector(".agy-stream").classList.contains("agy-hide-thoughts"));
});

test("the status line follows the status ops, with a live quota countdown", async () => {
  const { model, el } = await setup();
  const status = () => el.querySelector(".agy-status").textContent;
  const expect = [
    [{ status: "thinking" }, "Thinking…"],
    [{ status: "streaming" }, "Writing…"],
    [{ status: "calling tool", detail: "add" }, "Calling add…"],
    [{ status: "awaiting approval", detail: "add" }, "Awaiting approval for add…"],
    [{ status: "waiting for quota", seconds: 12 }, "Waiting for quota: 12 s"],
    [{ status: "cancelled" }, "Cancelled"],
    [{ status: "error" }, "Error"],
    [{ status: "done" }, "Done"],
  ];
  for (const [payload, text] of expect) {
    model.receive(ops([["status", payload]]));
    assert.equal(status(), text);
  }
});

test("Stop is a button named Stop that sends {type: stop} and goes away when the reply ends", async () => {
  const { model, el } = await setup();
  const stop = button(el, "Stop");
  assert.ok(stop, "a <button> whose accessible name is Stop");
  assert.equal(accessibleName(stop), "Stop");
  assert.ok(!stop.disabled && !stop.hidden);
  stop.click();
  assert.deepEqual(model.sent.at(-1), { type: "stop" });
  assert.ok(stop.disabled, "one click, one message");
  model.receive(ops([["status", { status: "cancelled" }]]));
  assert.ok(stop.hidden && stop.disabled);
});

test("an error op shows one error box; reset clears everything and replays", async () => {
  const { model, el } = await setup();
  model.receive(ops([["text", "partial"], ["error", { message: "Quota exhausted", hint: "Try later" }], ["status", { status: "error" }]]));
  model.receive(ops([["error", { message: "Still failing" }]]));
  const boxes = el.querySelectorAll(".agy-error:not([hidden])");
  assert.equal(boxes.length, 1);
  assert.equal(announced(), "helper: Error: Quota exhausted"); // read out once, with the status
  assert.equal(boxes[0].querySelector(".agy-error-message").textContent, "Still failing");

  model.receive(ops([["status", { status: "streaming" }], ["text", "# Replayed"]], true));
  await nextFrame();
  assert.equal(el.querySelector(".agy-error").hidden, true);
  assert.equal(blocks(el).length, 1);
  assert.equal(el.querySelector(".agy-body h1").textContent, "Replayed");
  assert.ok(!button(el, "Stop").hidden);
});

test("cleanup removes the view's listeners", async () => {
  const { model, cleanup } = await setup();
  assert.ok(model.listenerCount() > 0);
  cleanup();
  assert.equal(model.listenerCount(), 0);
});

test("with the assets loaded first, text is Markdown at once, highlighted, and there is no note", async () => {
  const { model, el } = await setup();
  assert.equal(el.querySelector(".agy-stream").dataset.formatting, "markdown");
  assert.ok(note(el).hidden);
  model.receive(ops([["text", "```python\ndef f():\n    pass\n```\n"]]));
  await nextFrame();
  assert.equal(el.querySelector("code.hljs.language-python .hljs-keyword").textContent, "def");
  const css = [...el.querySelectorAll("style")].map((s) => s.textContent).join("");
  assert.ok(css.includes(".agy-stream") && css.includes(".hljs-keyword"), "the view's styles and the code colours");
});

test("assets that load after the view rendered: nothing is lost, the text turns into Markdown", async () => {
  await withoutAssets(async () => {
    const { model, el, cleanup } = await setup();
    assert.deepEqual(model.sent, [{ type: "rendered" }], "the replay is asked for without waiting for the assets");
    assert.equal(typeof globalThis.__agyAssets?.promise?.then, "function", "the view created the deferred");
    assert.equal(globalThis.__agyAssets.value, undefined);

    model.receive(ops([["status", { status: "streaming" }], ["text", "stale"]]));
    model.receive(ops([["status", { status: "streaming" }], ["thought", "Hmm *x*"], ["text", "# Title\n\nSome "]], true));
    model.receive(ops([
      ["text", "**bold** <b onmouseover=alert(1)>x</b>"],
      ["tool_call", { id: "c1", name: "add", args: { a: 1 } }],
      ["tool_result", { id: "c1", name: "add", status: "ok", result: 2 }],
    ]));
    await nextFrame();
    assert.equal(el.querySelector(".agy-status").textContent, "Writing…", "status ops apply at once");
    assert.equal(el.querySelector(".agy-body h1"), null, "no Markdown yet");
    assert.equal(el.querySelector(".agy-text pre.agy-plain").textContent, "# Title\n\nSome **bold** <b onmouseover=alert(1)>x</b>");
    assert.equal(el.querySelector(".agy-body b"), null, "plain text is text, not HTML");
    assert.equal(el.querySelector(".agy-tool").dataset.status, "ok");
    assert.ok(note(el).hidden, "no note before the timeout");

    assetsWidget.initialize({ model: fakeModel() });
    await nextFrame();
    const [thoughts, text, call] = blocks(el);
    assert.equal(blocks(el).length, 3);
    assert.equal(thoughts.querySelector(".agy-thought-text em").textContent, "x");
    assert.equal(text.querySelector("h1").textContent, "Title");
    assert.equal(text.querySelector("strong").textContent, "bold");
    assert.deepEqual(activeContent(text), []);
    assert.equal(el.querySelector("pre.agy-plain"), null);
    assert.ok(call.classList.contains("agy-tool"));
    assert.equal(el.querySelector(".agy-stream").dataset.formatting, "markdown");

    model.receive(ops([["text", "more *text*"]]));
    await nextFrame();
    assert.equal(blocks(el).at(-1).querySelector("em").textContent, "text");
    cleanup();
    assert.equal(model.listenerCount(), 0);
  });
});

test("without the assets the view falls back to plain text and a note after the timeout", async () => {
  await withoutAssets(async () => {
    const { model, el } = await setup();
    const text = "# Not a heading\n\n<img src=x onerror=alert(1)><script>alert(2)</script> **x**";
    model.receive(ops([["status", { status: "streaming" }], ["text", text], ["error", { message: "boom" }]]));
    await sleep(60);
    assert.ok(!note(el).hidden);
    assert.equal(note(el).textContent, "formatting library not loaded");
    assert.equal(el.querySelector(".agy-stream").dataset.formatting, "plain");
    const pre = el.querySelector(".agy-text pre.agy-plain");
    assert.equal(pre.textContent, text);
    assert.equal(pre.children.length, 0);
    assert.equal(el.querySelector(".agy-body img, .agy-body script, .agy-body h1"), null);
    assert.equal(el.querySelector(".agy-error-message").textContent, "boom");

    model.receive(ops([["text", " more"], ["status", { status: "done" }]]));
    await nextFrame();
    assert.equal(pre.textContent, text + " more", "still streaming, as plain text");
    assert.ok(button(el, "Stop").hidden);

    assetsWidget.initialize({ model: fakeModel() }); // a renderer that turns up late still helps
    await nextFrame();
    assert.ok(note(el).hidden);
    assert.equal(el.querySelector(".agy-text h1").textContent, "Not a heading");
    assert.equal(el.querySelector(".agy-body img"), null);
    assert.deepEqual(activeContent(el.querySelector(".agy-body")), []);
  }, 20);
});

test("a view cleaned up before the assets arrive ignores them", async () => {
  await withoutAssets(async () => {
    const { model, el, cleanup } = await setup();
    model.receive(ops([["text", "*a*"]]));
    cleanup();
    assetsWidget.initialize({ model: fakeModel() });
    await sleep(40);
    assert.equal(el.querySelector(".agy-body em"), null);
    assert.ok(note(el).hidden, "the timer is gone too");
  }, 20);
});

test("a tool card says whether it awaits approval or runs", async () => {
  const { model, el } = await setup();
  const label = () => el.querySelector(".agy-tool-status").textContent;
  model.receive(ops([["tool_call", { id: "c1", name: "add", args: { a: 1 } }]]));
  assert.equal(label(), "pending…");
  model.receive(ops([["status", { status: "awaiting approval", detail: "add" }]]));
  assert.equal(label(), "awaiting approval…");
  model.receive(ops([["status", { status: "calling tool", detail: "add" }]]));
  assert.equal(label(), "running…");
  model.receive(ops([["tool_result", { id: "c1", name: "add", status: "ok", result: 2 }]]));
  assert.equal(label(), "ok");
});

test("status changes are announced once each through the page's live region, not per chunk", async () => {
  const { model, el } = await setup({ agent: "writer", model_name: "m", show_thoughts: true });
  const region = document.getElementById("agy-announcer");
  assert.ok(region, "the region is in the page before the first announcement");
  assert.equal(region.getAttribute("role"), "status");
  assert.equal(region.getAttribute("aria-live"), "polite");
  assert.equal(el.querySelector(".agy-status").getAttribute("aria-live"), null, "the visible line is not live");
  const heard = [];
  const observer = new window.MutationObserver(() => region.textContent && heard.push(region.textContent));
  observer.observe(region, { childList: true, characterData: true, subtree: true });
  const send = async (...args) => (model.receive(ops(...args)), await sleep(0)); // one kernel message at a time
  await send([["status", { status: "thinking" }]]);
  await send([["status", { status: "streaming" }], ["text", "Let me "]]);
  await send([["text", "check."]]);
  await send([["status", { status: "streaming" }], ["text", " More."]]); // no change: silent
  await send([["tool_call", { id: "c1", name: "erase", args: {} }], ["status", { status: "awaiting approval", detail: "erase" }]]);
  await send([["status", { status: "calling tool", detail: "erase" }], ["status", { status: "streaming" }], ["text", "Done."]]);
  await send([["status", { status: "streaming" }], ["text", "Done."]], true); // a replay where it already was: silent
  await send([["status", { status: "done" }]]);
  observer.disconnect();
  assert.deepEqual(heard, ["writer: Writing", "writer: Awaiting approval for erase", "writer: Writing", "writer: Done"]);
});

test("an error status is read out with the message the kernel put in its detail", async () => {
  const { model } = await setup({ agent: "writer", model_name: "m", show_thoughts: true });
  model.receive(ops([["status", { status: "thinking" }], ["status", { status: "error", detail: "Invalid API key" }]]));
  assert.equal(announced(), "writer: Error: Invalid API key");
  model.receive(ops([["status", { status: "waiting for quota", seconds: 3 }]]));
  assert.equal(announced(), "writer: Waiting for quota", "no countdown in the announcement");
});

test("two views of one reply announce it once; another reply's same status is read again", async () => {
  const model = fakeModel({ agent: "twin", model_name: "m", show_thoughts: true });
  await renderView(view, model);
  await renderView(view, model);
  const region = document.getElementById("agy-announcer");
  let changes = 0;
  const observer = new window.MutationObserver(() => (changes += 1));
  observer.observe(region, { childList: true, characterData: true, subtree: true });
  model.receive(ops([["status", { status: "streaming" }]]));
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(changes, 1);
  const other = await setup({ agent: "twin", model_name: "m", show_thoughts: true });
  other.model.receive(ops([["status", { status: "streaming" }]])); // same words, another reply: cleared, then set
  await new Promise((resolve) => setTimeout(resolve, 150));
  observer.disconnect();
  assert.equal(region.textContent, "twin: Writing");
  assert.equal(changes, 3);
});
