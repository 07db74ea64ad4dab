import { activeContent } from "./dom_env.mjs";
import assert from "node:assert/strict";
import { test } from "node:test";

const { renderMarkdown, lastSafeSplit, MarkdownBlock } = await import("../src/render_markdown.js");

const html = (markdown) => {
  const div = document.createElement("div");
  div.innerHTML = renderMarkdown(markdown);
  return div;
};

test("headings, lists and fenced code with highlight classes", () => {
  const div = html("# Title\n\n- one\n- two\n\n```python\ndef f(x):\n    return 'hi'\n```\n");
  assert.equal(div.querySelector("h1").textContent, "Title");
  assert.equal(div.querySelectorAll("li").length, 2);
  const code = div.querySelector("pre > code");
  assert.ok(code.classList.contains("hljs") && code.classList.contains("language-python"));
  assert.equal(code.querySelector(".hljs-keyword").textContent, "def");
  assert.ok(code.querySelector(".hljs-string"));
});

test("every common language is registered (and its aliases)", () => {
  for (const lang of ["python", "py", "javascript", "js", "typescript", "ts", "json", "bash", "sh", "shell", "sql", "markdown", "md", "yaml", "yml", "r"]) {
    assert.ok(html("```" + lang + "\nx = 1\n```").querySelector(`code.hljs.language-${lang}`), lang);
  }
  assert.equal(html("```nosuchlang\n<b>x</b>\n```").querySelector("code").textContent, "<b>x</b>");
});

test("script, event handlers, javascript: links and embedding tags are stripped", () => {
  const div = html(
    [
      "<script>alert(1)</script>",
      '<img src="x.png" onerror="alert(2)" onload="alert(3)">',
      "[click](javascript:alert(4))",
      '<a href="javascript:alert(5)">raw</a>',
      '<iframe src="https://example.org"></iframe><object></object><embed><form action="/x"><input></form>',
      "<style>body{display:none}</style>",
      '<div style="position:fixed" onclick="alert(6)">styled</div>',
      "<svg><script>alert(7)</script></svg>",
    ].join("\n\n"),
  );
  assert.deepEqual(activeContent(div), []);
  assert.equal(div.querySelector("img, a[href^='javascript']"), null);
  // raw HTML in a reply is shown as text (as in the saved static copy), never as elements
  assert.ok(div.textContent.includes('<img src="x.png" onerror="alert(2)"'), div.textContent);
});

test("a reply cannot draw its own controls; task lists render as text", () => {
  const div = html('<button>Approve</button> <input type="text" aria-label="Reason"> <dialog open>x</dialog>\n\n- [x] done\n- [ ] todo');
  assert.equal(div.querySelector("button, input, select, textarea, dialog"), null);
  assert.deepEqual([...div.querySelectorAll("li")].map((li) => li.textContent.trim()), ["\u2611 done", "\u2610 todo"]);
});

test("links open in a new tab without an opener", () => {
  const a = html("see [docs](https://example.org/docs)").querySelector("a");
  assert.equal(a.getAttribute("href"), "https://example.org/docs");
  assert.equal(a.getAttribute("target"), "_blank");
  assert.equal(a.getAttribute("rel"), "noopener noreferrer");
});

test("lastSafeSplit cuts before a new block, never inside fenced code", () => {
  assert.equal(lastSafeSplit("one\n\ntwo\n"), 5);
  assert.equal(lastSafeSplit("one\n\ntwo"), 0, "an unfinished line is not a cut");
  assert.equal(lastSafeSplit("```\na\n\nb\n"), 0, "inside an open fence");
  assert.equal(lastSafeSplit("```\na\n\nb\n```\n\nc\n"), 14);
  assert.equal(lastSafeSplit("- a\n\n  b\n"), 0, "indented continuation of a list item");
  assert.equal(lastSafeSplit("a\n\nb\n\nc\n", 3), 6);
});

test("a 64 KB reply in 1,600 deltas renders incrementally and like a one-shot render", () => {
  const section = (i) => `## Part ${i}\n\nSome **bold** text, a [link](https://example.org/${i}) and \`code\`.\n\n` +
    "```python\nfor i in range(10):\n\n    print(i)\n```\n\n- item one\n- item two\n\n";
  let reply = "";
  for (let i = 0; reply.length < 64 * 1024; i++) reply += section(i);
  const size = Math.floor(reply.length / 1600);
  const deltas = Array.from({ length: Math.ceil(reply.length / size) }, (_, i) => reply.slice(i * size, (i + 1) * size));
  assert.ok(deltas.length >= 1600);

  const el = document.createElement("div");
  const block = new MarkdownBlock(el);
  let first = null;
  deltas.forEach((delta, i) => {
    block.append(delta);
    if (i % 20 === 19) {
      block.render(); // one render per batch of ~20 deltas (the kernel coalesces to ≤ 20 Hz)
      first ??= el.firstChild === block.tail ? null : el.firstChild;
      assert.ok(block.tail.textContent.length < 1000, "only the unfinished tail is re-rendered");
    }
  });
  block.render();

  assert.equal(el.firstChild, first, "finished blocks are rendered once and kept");
  const oneShot = html(reply);
  assert.equal(el.querySelectorAll("h2").length, oneShot.querySelectorAll("h2").length);
  assert.equal(el.querySelectorAll("pre code.language-python").length, oneShot.querySelectorAll("pre code.language-python").length);
  assert.equal(el.textContent, oneShot.textContent);
});
