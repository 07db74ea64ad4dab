// The assets bundle loaded the way anywidget may do it last: after a StreamView has rendered, with
// no initialize() call (the module publishes the renderer when it is evaluated).
import { fakeModel, loadBundle, nextFrame, renderView } from "./dom_env.mjs";
import assert from "node:assert/strict";
import { test } from "node:test";

const ops = (list, reset = false) => ({ type: "ops", ops: list, reset });

test("a view rendered before the assets module loads switches to Markdown when it does", async () => {
  assert.equal(globalThis.__agyAssets, undefined);
  const view = await loadBundle("stream_view.js");
  const model = fakeModel({ agent: "a", model_name: "m", show_thoughts: true });
  const { el } = await renderView(view, model);
  assert.deepEqual(model.sent, [{ type: "rendered" }]);
  model.receive(ops([["text", "Hello **world**\n\n```json\n{\"a\": 1}\n```\n"]], true));
  await nextFrame();
  assert.equal(el.querySelector("strong"), null);

  const assetsWidget = await loadBundle("agy_assets.js"); // evaluation alone publishes
  await nextFrame();
  assert.equal(el.querySelector(".agy-text strong").textContent, "world");
  assert.ok(el.querySelector("code.hljs.language-json"));
  assert.ok(el.querySelector(".agy-assets-note").hidden);

  // initialize() is idempotent, and the widget itself shows nothing.
  assert.equal(assetsWidget.initialize({ model: fakeModel() }), undefined);
  const value = globalThis.__agyAssets.value;
  assert.equal(value.api, 1);
  for (const name of ["renderMarkdown", "MarkdownBlock", "lastSafeSplit"]) assert.equal(typeof value[name], "function", name);
  assert.ok(value.css.includes(".hljs-keyword"));
  const host = document.createElement("div");
  await assetsWidget.render({ model: fakeModel(), el: host });
  assert.equal(host.childNodes.length, 0);
});

test("assets of an incompatible version are not used: plain text and the note", async () => {
  globalThis.__agyAssets = { promise: Promise.resolve({ api: 999 }), resolve() {}, value: { api: 999 } };
  globalThis.__agyAssetsTimeoutMs = 10;
  try {
    const view = await loadBundle("stream_view.js");
    const model = fakeModel({});
    const { el } = await renderView(view, model);
    model.receive(ops([["text", "**x**"]]));
    await new Promise((resolve) => setTimeout(resolve, 40));
    assert.equal(el.querySelector("pre.agy-plain").textContent, "**x**");
    assert.ok(!el.querySelector(".agy-assets-note").hidden);
  } finally {
    delete globalThis.__agyAssets;
    delete globalThis.__agyAssetsTimeoutMs;
  }
});
