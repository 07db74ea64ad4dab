// The XSS corpus (tests/xss_corpus.json, written by tests/xss_corpus.py) through the live widget's
// Markdown renderer, rendered at once and streamed in small deltas: nothing that runs, fetches or
// draws controls may come out. The browser test (tests/browser/test_xss.py) runs the same corpus in
// Chromium; this one pins the sanitizer's rules one by one.
import { activeContent } from "./dom_env.mjs";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

const { renderMarkdown, MarkdownBlock } = await import("../src/render_markdown.js");
const PAYLOADS = JSON.parse(readFileSync(new URL("../../tests/xss_corpus.json", import.meta.url), "utf8"));

const LINK = /^(?:https?:|mailto:|#)/i;
const DATA_IMAGE = /^data:image\/(?:png|jpeg|gif|webp)[;,]/i;
const FORBIDDEN = new Set(["script", "style", "iframe", "object", "embed", "form", "input", "button", "textarea",
  "select", "option", "dialog", "base", "meta", "link", "svg", "math", "video", "audio", "source", "picture",
  "template", "noscript", "frame", "frameset", "marquee", "details"]);

/** Why an element of rendered Markdown is unsafe, or null. */
function unsafe(el) {
  const tag = el.localName;
  if (FORBIDDEN.has(tag)) return `<${tag}>`;
  for (const { name, value } of el.attributes) {
    const what = `<${tag} ${name}="${value.slice(0, 60)}">`;
    if (/^on/i.test(name) || ["style", "srcset", "action", "formaction", "background", "poster", "ping"].includes(name)) return what;
    if (name === "href" && !LINK.test(value)) return what;
    if (name === "src" && !(tag === "img" && DATA_IMAGE.test(value))) return what;
  }
  return null;
}

const render = (markdown) => {
  const div = document.createElement("div");
  div.innerHTML = renderMarkdown(markdown);
  return div;
};

const problems = (div, payload) =>
  [...div.querySelectorAll("*"), ...activeContent(div)].map(unsafe).filter(Boolean).map((why) => `${payload.id} (${payload.cls}): ${why}`);

test("the corpus has at least 150 distinct payloads in named classes", () => {
  assert.ok(PAYLOADS.length >= 150, `${PAYLOADS.length} payloads`);
  assert.equal(new Set(PAYLOADS.map((p) => p.text)).size, PAYLOADS.length);
  assert.ok(new Set(PAYLOADS.map((p) => p.cls)).size >= 10);
});

test("no payload renders anything that runs, fetches or draws controls", () => {
  const found = PAYLOADS.flatMap((p) => problems(render(`${p.text}\n\nAGYM${p.id}X\n`), p));
  assert.deepEqual(found, []);
});

test("no payload hides the text after it", () => {
  const hidden = PAYLOADS.filter((p) => !render(`${p.text}\n\nAGYM${p.id}X\n`).textContent.includes(`AGYM${p.id}X`));
  assert.deepEqual(hidden.map((p) => p.id), []);
});

test("streamed in 29-character deltas, no payload renders anything unsafe at any frame", () => {
  const found = [];
  for (const p of PAYLOADS.filter((p) => p.text.length < 2000)) {
    const el = document.createElement("div");
    const block = new MarkdownBlock(el);
    const text = `${p.text}\n\nAGYM${p.id}X\n`;
    for (let i = 0; i < text.length; i += 29) {
      block.append(text.slice(i, i + 29));
      block.render();
      found.push(...problems(el, p));
    }
  }
  assert.deepEqual([...new Set(found)], []);
});

test("links keep http, https, mailto and #anchors; every other scheme loses its href", () => {
  const div = render("[a](https://example.org/a) [b](http://example.org/b) [c](mailto:x@example.org) [d](#part) " +
    "[e](javascript:alert(1)) [f](vbscript:x) [g](data:text/html,x) [h](relative/path) [i](ftp://example.org)");
  assert.deepEqual([...div.querySelectorAll("a")].map((a) => [a.getAttribute("href"), a.textContent]),
    [["https://example.org/a", "a"], ["http://example.org/b", "b"], ["mailto:x@example.org", "c"], ["#part", "d"]]);
  assert.equal(div.textContent.trim(), "a b c d e f g h i", "the others are shown as their text");
});

test("a remote image becomes a link with its alt text; a data: raster image stays an image", () => {
  const png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
  const div = render(`![a chart](https://evil.example/x.png) ![](//evil.example/y.png) ![plot](${png}) ![svg](data:image/svg+xml;base64,PHN2Zz4=)`);
  const images = [...div.querySelectorAll("img")];
  assert.deepEqual(images.map((img) => [img.getAttribute("src"), img.getAttribute("alt")]), [[png, "plot"]]);
  const links = [...div.querySelectorAll("a.agy-image-link")];
  assert.deepEqual(links.map((a) => [a.getAttribute("href"), a.textContent]),
    [["https://evil.example/x.png", "[image: a chart]"], ["//evil.example/y.png", "[image]"],
      ["data:image/svg+xml;base64,PHN2Zz4=", "[image: svg]"]]
      .map(([href, text]) => [LINK.test(href) ? href : null, text]));
});
