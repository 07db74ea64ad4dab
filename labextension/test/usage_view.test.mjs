import { fakeModel, loadBundle, renderView } from "./dom_env.mjs";
import assert from "node:assert/strict";
import { test } from "node:test";

const view = await loadBundle("usage_view.js");

const DATA = {
  model: "gemini-2.5-flash",
  rows: [
    { scope: "This turn", prompt: 1234, output: 56, thinking: 789, cached: 0, cost: 0.0012 },
    { scope: "Session", prompt: 1234567, output: 8901, thinking: 0, cached: 1000, cost: 12.5 },
    { scope: "This agent", prompt: 10, output: 1, thinking: 0, cached: 0, cost: null },
  ],
  context: { used: 123456, limit: 1048576, percent: 11.77 },
  currency: "USD",
  note: "Costs are estimates from a price table.",
};

test("a table with thousands separators, costs, the context bar and the note", async () => {
  const model = fakeModel({ data: DATA });
  const { el } = await renderView(view, model);
  const rows = [...el.querySelectorAll("tbody tr")].map((tr) => [...tr.children].map((c) => c.textContent));
  assert.deepEqual(rows, [
    ["This turn", "1,234", "56", "789", "0", "$0.0012"],
    ["Session", "1,234,567", "8,901", "0", "1,000", "$12.50"],
    ["This agent", "10", "1", "0", "0", "—"],
  ]);
  assert.equal(el.querySelector(".agy-context span").textContent, "Context: 123,456 / 1,048,576 tokens (11.8%)");
  assert.equal(el.querySelector("[role=progressbar]").getAttribute("aria-valuenow"), "11.8");
  assert.equal(el.querySelector(".agy-context-fill").style.width, "11.77%");
  assert.equal(el.querySelector(".agy-note").textContent, DATA.note);
  assert.deepEqual([...el.querySelectorAll("th")].filter((th) => !th.textContent.trim()), [], "no empty header cells");
});

test("re-renders on change:data and copes with missing pieces", async () => {
  const model = fakeModel({ data: {} });
  const { el, cleanup } = await renderView(view, model);
  assert.equal(el.querySelectorAll("tbody tr").length, 0);
  model.set("data", { rows: [{ scope: "Session", prompt: 5, output: 5, thinking: 0, cached: 0, cost: 0 }], context: { used: 42, limit: null, percent: null } });
  assert.equal(el.querySelectorAll("tbody tr").length, 1);
  assert.equal(el.querySelector(".agy-context").textContent, "Context: 42 tokens");
  cleanup();
  assert.equal(model.listenerCount(), 0);
});
