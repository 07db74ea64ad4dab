// src/static_transcript.js: a saved reply drawn from its JSON (tool calls, code runs, citations, error, usage)
// and its text/html (the prose, sanitized again here), and what the extension's commands read from it.
// The HTML below has the shape transcript.py to_html() gives; tests/browser/test_labextension.py renders
// real ones in JupyterLab.
import "./dom_env.mjs";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

globalThis.DOMParser = window.DOMParser; // a browser global the renderer uses to read text/html inert
const { askAboutCell, codeFromReply, errorText, renderStaticTranscript } = await import("../src/static_transcript.js");

const CORPUS = JSON.parse(readFileSync(new URL("../../tests/xss_corpus.json", import.meta.url), "utf8"));
const ACTIVE = "script, iframe, object, embed, form, input, button, textarea, select, style, svg, math, base, meta, link";

function staticHtml(texts, thoughts = "") {
  const thoughtsHtml = thoughts
    ? `<details class="agy-thoughts"><summary>Thoughts</summary><div class="agy-md agy-thought-text">${thoughts}</div></details>`
    : "";
  return `<div class="agy-static agy-reply agy-status-done"><style>.agy-static{}</style><div class="agy-header">` +
    `<span class="agy-agent">a</span></div>${thoughtsHtml}` +
    texts.map((t) => `<div class="agy-md agy-text">${t}</div>`).join(`<div class="agy-tool agy-status-ok"></div>`) + "</div>";
}

const REPLY = {
  version: 2, agent: "helper", model: "gemini-2.5-flash", status: "done", thoughts: 12, text_in: "text/html",
  blocks: [
    { type: "text", chars: 10 },
    { type: "tool", id: "c1", name: "lookup", args: { city: "Paris" }, status: "ok", result: { high_c: 21 } },
    { type: "text", chars: 20 },
    { type: "code_execution", id: null, code: "print(1)", language: "python", outcome: "ok", output: "1\n" },
    { type: "citations", sources: [{ title: "Docs", uri: "https://example.org/" }, { title: "bad", uri: "javascript:alert(1)" }], supports: [], queries: [] },
  ],
  error: { message: "quota exhausted", hint: "wait a minute" },
  usage: "18 in / 78 out tokens",
};

test("the blocks come in the JSON's order, text from the i-th .agy-text of the HTML copy", () => {
  const html = staticHtml(['<h2>Weather</h2><p>It is <strong>sunny</strong>.</p>',
    '<pre class="agy-code"><code><span class="k">def</span> f():\n    pass\n</code></pre>'], "<p>Planning</p>");
  const root = renderStaticTranscript(REPLY, html);
  assert.equal(root.dataset.status, "done");
  assert.equal(root.querySelector(".agy-header .agy-status").textContent, "Done");
  assert.equal(root.querySelector(".agy-agent").textContent, "helper");
  const body = root.querySelector(".agy-body");
  assert.deepEqual([...body.children].map((el) => el.className.split(" ").find((c) => c !== "agy-md")),
    ["agy-thoughts", "agy-text", "agy-tool", "agy-text", "agy-code-run", "agy-citations"]);
  assert.equal(body.querySelector(".agy-thought-text").textContent, "Planning");
  assert.equal(body.querySelector("h2").textContent, "Weather");
  assert.equal(body.querySelector("pre.agy-code span.k").textContent, "def", "Pygments' classes stay (CSS colours them)");
  const tool = body.querySelector(".agy-tool");
  assert.equal(tool.dataset.status, "ok");
  assert.equal(tool.querySelector(".agy-tool-status").textContent, "ok");
  assert.match(tool.querySelector(".agy-tool-result").textContent, /"high_c": 21/);
  assert.equal(body.querySelector(".agy-code-run").dataset.status, "ok");
  const links = [...body.querySelectorAll(".agy-citations a")];
  assert.deepEqual(links.map((a) => a.getAttribute("href")), ["https://example.org/"], "only http(s) sources are links");
  const error = root.querySelector(".agy-error");
  assert.equal(error.hidden, false);
  assert.equal(error.querySelector(".agy-error-message").textContent, "quota exhausted");
  assert.equal(root.querySelector(".agy-footer").textContent, "18 in / 78 out tokens");
});

test("a missing text/html copy is said in words, and the JSON's blocks still show", () => {
  const root = renderStaticTranscript(REPLY, "");
  assert.match(root.textContent, /2 text blocks are missing/);
  assert.equal(root.querySelectorAll(".agy-tool").length, 1);
});

test("a pending tool call and an unfinished code run show as such; an unknown version is noted", () => {
  const root = renderStaticTranscript({ version: 3, agent: "a", status: "cancelled", blocks: [
    { type: "tool", id: null, name: "slow", args: {}, status: "pending", result: null },
    { type: "code_execution", id: "x", code: "1", language: "python", outcome: null, output: null },
  ] }, "");
  assert.equal(root.querySelector(".agy-status").textContent, "Cancelled");
  assert.equal(root.querySelector(".agy-tool").dataset.status, "running");
  assert.equal(root.querySelector(".agy-code-run").dataset.status, "running");
  assert.match(root.textContent, /Transcript version 3/);
});

test("the HTML copy is sanitized again: a notebook file can carry any text/html", () => {
  const payloads = CORPUS.map((p) => p.text);
  const reply = { version: 2, agent: payloads[0], model: payloads[1], status: payloads[2],
    blocks: payloads.map(() => ({ type: "text", chars: 1 })), error: { message: payloads[3], hint: payloads[4] },
    usage: payloads[5] };
  const root = renderStaticTranscript(reply, staticHtml(payloads, payloads.join("")));
  const active = [...root.querySelectorAll(ACTIVE)].map((el) => el.outerHTML.slice(0, 80));
  assert.deepEqual(active, []);
  for (const el of root.querySelectorAll("*")) {
    for (const { name, value } of el.attributes) {
      assert.ok(!/^on/i.test(name), `${name} on <${el.localName}>`);
      if (name === "src") assert.match(value, /^data:image\/(png|jpeg|gif|webp)[;,]/i);
      if (name === "href") assert.match(value, /^(https?:|mailto:|#)/i);
      assert.notEqual(name, "style");
    }
  }
});

test("codeFromReply: the code blocks of the text, not of tool cards", () => {
  const html = staticHtml(["<p>Try:</p><pre class=\"agy-code\"><code><span class=\"k\">import</span> os\n</code></pre>",
    "<pre class=\"agy-code\"><code>x = 1 &lt; 2\n</code></pre>"]).replace(
    '<div class="agy-tool agy-status-ok"></div>', '<div class="agy-tool"><pre class="agy-json">{"not": "code"}</pre></div>');
  assert.deepEqual(codeFromReply(html), ["import os", "x = 1 < 2"]);
  assert.deepEqual(codeFromReply(""), []);
});

test("errorText: the traceback without terminal colours; askAboutCell quotes with a fence that cannot close early", () => {
  const outputs = [{ output_type: "stream", text: "hi" },
    { output_type: "error", ename: "ZeroDivisionError", evalue: "division by zero",
      traceback: ["\u001b[0;31mZeroDivisionError\u001b[0m Traceback", "\u001b[0;31mZeroDivisionError\u001b[0m: division by zero"] }];
  assert.equal(errorText(outputs), "ZeroDivisionError Traceback\nZeroDivisionError: division by zero");
  assert.equal(errorText([{ output_type: "error", ename: "E", evalue: "v", traceback: [] }]), "E: v");
  assert.equal(errorText([]), "");
  const source = "s = '```'\n1/0\n";
  const asked = askAboutCell(source, errorText(outputs));
  assert.ok(asked.startsWith("%%chat\nWhy does this cell fail"));
  assert.ok(asked.includes("````python\ns = '```'\n1/0\n````"), asked);
  assert.ok(asked.endsWith("```\nZeroDivisionError Traceback\nZeroDivisionError: division by zero\n```"), asked);
  assert.equal(askAboutCell("x = 1"), "%%chat\nExplain this cell.\n\n```python\nx = 1\n```");
});
