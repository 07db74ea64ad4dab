import { accessibleName, activeContent, button, fakeModel, loadBundle, nextFrame, renderView } from "./dom_env.mjs";
import assert from "node:assert/strict";
import { test } from "node:test";

const view = await loadBundle("approval_view.js");

async function setup(traits = {}) {
  const model = fakeModel({
    agent: "helper", tool: "add", args_json: '{\n  "a": 2,\n  "b": "<b>3</b>"\n}',
    state: "pending", reason: "", timeout_seconds: 0, ...traits,
  });
  const { el, cleanup } = await renderView(view, model);
  const reason = [...el.querySelectorAll("input[type=text]")].find((i) => accessibleName(i) === "Reason");
  const always = el.querySelector("input[type=checkbox]");
  const scope = (value) => el.querySelector(`input[type=radio][value=${value}]`);
  return { model, el, cleanup, reason, always, scope, approve: button(el, "Approve"), deny: button(el, "Deny") };
}

test("shows who wants to call what, with the args as text", async () => {
  const { model, el, reason, always, approve, deny } = await setup();
  assert.deepEqual(model.sent, [{ type: "rendered" }]);
  assert.equal(el.querySelector(".agy-header").textContent, "helper wants to call add");
  assert.equal(el.querySelector("pre").textContent, '{\n  "a": 2,\n  "b": "<b>3</b>"\n}');
  assert.equal(el.querySelector("pre b"), null);
  assert.ok(reason && approve && deny);
  assert.equal(always.closest("label").textContent.trim(), "Always allow add for this agent");
  assert.equal(el.querySelector(".agy-preview").hidden, true); // no preview: the arguments are what is shown
});

test("Approve sends the decision with always, then locks the controls", async () => {
  const { model, el, reason, always, approve, deny } = await setup();
  always.checked = true;
  approve.click();
  assert.deepEqual(model.sent.at(-1), { type: "decision", approved: true, reason: "", always: true, scope: "args" });
  for (const control of [approve, deny, reason, always]) assert.ok(control.disabled);
  assert.equal(el.querySelector(".agy-outcome").textContent, "Approved");
  model.set("state", "approved");
  assert.equal(el.querySelector(".agy-outcome").textContent, "Approved");
});

test("Deny sends the reason (and never 'always allow')", async () => {
  const { model, el, reason, always, deny } = await setup();
  reason.value = "  too risky ";
  always.checked = true;
  deny.click();
  assert.deepEqual(model.sent.at(-1), { type: "decision", approved: false, reason: "too risky", always: false, scope: "args" });
  assert.equal(el.querySelector(".agy-outcome").textContent, "Denied: too risky");
});

test("a state set by the kernel disables the controls and shows the outcome", async () => {
  const outcomes = { timeout: "Timed out: denied", cancelled: "Cancelled", approved: "Approved", denied: "Denied: policy" };
  for (const [state, text] of Object.entries(outcomes)) {
    const { model, el, approve, deny } = await setup({ timeout_seconds: 30 });
    assert.equal(el.querySelector(".agy-countdown").textContent, "Auto-deny in 30 s");
    model.set("reason", state === "denied" ? "policy" : "");
    model.set("state", state);
    assert.ok(approve.disabled && deny.disabled);
    assert.ok(el.querySelector(".agy-countdown").hidden);
    assert.equal(el.querySelector(".agy-outcome").textContent, text);
  }
});

test("cleanup removes the view's listeners and timers", async () => {
  const { model, cleanup } = await setup({ timeout_seconds: 5 });
  cleanup();
  assert.equal(model.listenerCount(), 0);
});

test("'always' can be narrowed to these arguments or widened to the tool", async () => {
  const { model, always, scope, approve } = await setup();
  assert.ok(scope("args").checked && scope("args").disabled && scope("tool").disabled); // narrow by default
  always.checked = true;
  always.dispatchEvent(new window.Event("change"));
  assert.ok(!scope("args").disabled && !scope("tool").disabled);
  scope("tool").checked = true;
  approve.click();
  assert.deepEqual(model.sent.at(-1), { type: "decision", approved: true, reason: "", always: true, scope: "tool" });
  assert.ok(scope("args").disabled && scope("tool").disabled);
  const other = await setup();
  assert.notEqual(scope("args").name, other.scope("args").name); // one radio group per view
});

test("a code preview is shown as code with its language; the arguments move under a disclosure", async () => {
  delete globalThis.__agyAssets; // no highlighter on the page yet
  const code = "import os\nprint(os.getcwd())  # <b>not bold</b>";
  const { el } = await setup({ preview: { kind: "code", text: code, language: "python" } });
  const box = el.querySelector(".agy-preview");
  assert.equal(box.hidden, false);
  assert.equal(box.querySelector("pre code.language-python").textContent, code);
  assert.equal(box.querySelector("b"), null);
  const details = el.querySelector("details.agy-args-details");
  assert.equal(details.querySelector("summary").textContent, "Arguments");
  assert.ok(details.querySelector("pre.agy-approval-args").textContent.includes('"a": 2'));
});

test("code is highlighted once the assets' renderer is on the page, and stays inert", async () => {
  delete globalThis.__agyAssets;
  const code = "def f(x):\n    return '<img src=x onerror=alert(1)>' + ```x```";
  const { el } = await setup({ preview: { kind: "code", text: code, language: "python" } });
  assert.equal(el.querySelector(".hljs-keyword"), null);
  const assets = await loadBundle("agy_assets.js"); // publishes the renderer, as the AssetsWidget does
  assets.initialize?.();
  await globalThis.__agyAssets.promise;
  await new Promise((resolve) => setTimeout(resolve, 0));
  const block = el.querySelector(".agy-preview .agy-highlighted");
  assert.ok(block, "highlighted after the assets arrive");
  assert.equal(block.querySelector("code.language-python").textContent, code); // verbatim, fences and all
  assert.ok([...block.querySelectorAll(".hljs-keyword")].some((k) => k.textContent === "def"));
  assert.deepEqual(activeContent(block), []);
  assert.equal(block.querySelector("img"), null);
  // a view rendered after the assets highlights at once
  const later = await setup({ preview: { kind: "code", text: "x = 1", language: "python" } });
  assert.ok(later.el.querySelector(".agy-highlighted .hljs-number"));
});

test("a command preview shows the command after a prompt", async () => {
  const { el } = await setup({ preview: { kind: "command", text: "ls -la && rm -rf build", language: "bash" } });
  const pre = el.querySelector(".agy-preview pre.agy-preview-command");
  assert.equal(pre.querySelector("code").textContent, "ls -la && rm -rf build");
  assert.equal(pre.textContent, "$ ls -la && rm -rf build");
});

test("a diff preview colours added, removed and hunk lines", async () => {
  const diff = "--- a/x.py\n+++ b/x.py\n@@ -1,2 +1,2 @@\n keep\n-old <i>\n+new";
  const { el } = await setup({ preview: { kind: "diff", text: diff } });
  const lines = [...el.querySelectorAll(".agy-preview .agy-diff-line")];
  assert.deepEqual(lines.map((l) => [l.className.replace("agy-diff-line ", ""), l.textContent]), [
    ["agy-diff-file", "--- a/x.py"], ["agy-diff-file", "+++ b/x.py"], ["agy-diff-hunk", "@@ -1,2 +1,2 @@"],
    ["agy-diff-context", " keep"], ["agy-diff-del", "-old <i>"], ["agy-diff-add", "+new"],
  ]);
  assert.equal(el.querySelector(".agy-preview i"), null);
});

test("a preview set later replaces the arguments view", async () => {
  const { model, el } = await setup();
  assert.equal(el.querySelector(".agy-args-slot > pre.agy-approval-args") !== null, true);
  model.set("preview", { kind: "command", text: "make" });
  assert.equal(el.querySelector(".agy-preview").hidden, false);
  assert.ok(el.querySelector(".agy-args-slot details pre.agy-approval-args"));
});

test("the tab order is Approve, Deny, Reason, always; the card is a labelled group", async () => {
  const { el, reason, always, approve, deny } = await setup();
  const focusable = [...el.querySelectorAll("button, input, summary, [tabindex]:not([tabindex='-1'])")];
  assert.deepEqual(focusable.slice(0, 4), [approve, deny, reason, always]);
  assert.equal(accessibleName(reason), "Reason");
  assert.equal(accessibleName(always), "Always allow add for this agent");
  const card = el.querySelector(".agy-approval");
  assert.equal(card.getAttribute("role"), "group");
  assert.equal(document.getElementById(card.getAttribute("aria-labelledby")).textContent, "helper wants to call add");
});

test("Enter in Reason denies with that reason; Shift+Enter does not", async () => {
  const { model, reason } = await setup();
  reason.value = "not that file";
  const key = (init) => new window.KeyboardEvent("keydown", { key: "Enter", bubbles: true, cancelable: true, ...init });
  reason.dispatchEvent(key({ shiftKey: true }));
  assert.deepEqual(model.sent, [{ type: "rendered" }]);
  const enter = key();
  reason.dispatchEvent(enter);
  assert.ok(enter.defaultPrevented);
  assert.deepEqual(model.sent.at(-1), { type: "decision", approved: false, reason: "not that file", always: false, scope: "args" });
  reason.dispatchEvent(key());
  assert.equal(model.sent.length, 2, "one decision");
});

test("a new card takes the focus, unless the user is typing; after a decision the focus stays on the card", async () => {
  const editor = document.createElement("div");
  editor.className = "cm-editor";
  const content = document.createElement("div");
  content.tabIndex = 0;
  editor.append(content);
  document.body.append(editor);
  content.focus();
  const busy = await setup();
  await nextFrame();
  await nextFrame();
  assert.equal(document.activeElement, content, "typing in an editor: the focus stays there");
  editor.remove();
  document.body.focus();

  const idle = await setup();
  await nextFrame();
  await nextFrame();
  const card = idle.el.querySelector(".agy-approval");
  assert.equal(document.activeElement, card);
  idle.approve.focus();
  idle.approve.click();
  assert.equal(document.activeElement, card, "not dropped on the page when the buttons lock");
  assert.notEqual(busy.el.querySelector(".agy-approval"), document.activeElement);
});

test("a card in a notebook leaves the focus alone while the user works outside that notebook", async () => {
  const sidebar = document.createElement("button");
  const notebook = document.createElement("div");
  notebook.className = "jp-Notebook";
  document.body.append(sidebar, notebook);
  sidebar.focus();
  const { el } = await setup();
  notebook.append(el); // as JupyterLab attaches the output, before the card's first frame
  await nextFrame();
  await nextFrame();
  assert.equal(document.activeElement, sidebar);
  sidebar.remove();
  notebook.remove();
});
