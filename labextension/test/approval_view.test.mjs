import { accessibleName, button, fakeModel, loadBundle, renderView } from "./dom_env.mjs";
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
  return { model, el, cleanup, reason, always, approve: button(el, "Approve"), deny: button(el, "Deny") };
}

test("shows who wants to call what, with the args as text", async () => {
  const { model, el, reason, always, approve, deny } = await setup();
  assert.deepEqual(model.sent, [{ type: "rendered" }]);
  assert.equal(el.querySelector(".agy-header").textContent, "helper wants to call add");
  assert.equal(el.querySelector("pre").textContent, '{\n  "a": 2,\n  "b": "<b>3</b>"\n}');
  assert.equal(el.querySelector("pre b"), null);
  assert.ok(reason && approve && deny);
  assert.equal(always.closest("label").textContent.trim(), "Always allow add for this agent");
});

test("Approve sends the decision with always, then locks the controls", async () => {
  const { model, el, reason, always, approve, deny } = await setup();
  always.checked = true;
  approve.click();
  assert.deepEqual(model.sent.at(-1), { type: "decision", approved: true, reason: "", always: true });
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
  assert.deepEqual(model.sent.at(-1), { type: "decision", approved: false, reason: "too risky", always: false });
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
