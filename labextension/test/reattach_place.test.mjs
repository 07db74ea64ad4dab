// Where a reply's output goes in its cell after a page reload (lab/reattach_place.ts, built into lib/).
import assert from "node:assert/strict";
import { test } from "node:test";

const { placement, tagOf, usesAgy } = await import("../lib/reattach_place.js");

const tag = (reply, part, final = false, run = "r1") => ({ cell: "c1", run, reply, part, final });
const out = (t) => ({ output_type: "display_data", data: {}, metadata: t ? { agy_reply: t } : {} });

test("a reply the cell does not show yet replaces what the cell shows (an earlier run)", () => {
  assert.deepEqual(placement([], tag(3, 0), false), { kind: "replace-all" });
  assert.deepEqual(placement([out(null), out(tag(2, 0, true))], tag(3, 0), false), { kind: "replace-all" });
});

test("a part the cell shows is replaced, but a static copy never goes back to the widget", () => {
  assert.deepEqual(placement([out(tag(3, 0))], tag(3, 0, true), false), { kind: "set", index: 0 });
  assert.deepEqual(placement([out(tag(3, 0))], tag(3, 0), false), { kind: "set", index: 0 });
  assert.equal(placement([out(tag(3, 0, true))], tag(3, 0), false), null);
});

test("a later run of the cell wins over an earlier reply of the same kernel run", () => {
  assert.equal(placement([out(tag(4, 0))], tag(3, 0, true), false), null);
  assert.deepEqual(placement([out(tag(4, 0, false, "other"))], tag(3, 0), false), { kind: "replace-all" });
});

test("a new part goes last; a part shown again goes after the parts before it", () => {
  const cell = [out(tag(3, 0)), out(null), out(tag(3, 2))];  // part 0, code output, part 2
  assert.deepEqual(placement(cell, tag(3, 3), true), { kind: "insert", index: 3 });
  assert.deepEqual(placement(cell, tag(3, 1), false), { kind: "insert", index: 1 });
  assert.deepEqual(placement([out(tag(3, 2))], tag(3, 1), false), { kind: "insert", index: 0 });
});

test("only well-formed tags count, and only notebooks that use agy_jupyter ask the kernel", () => {
  assert.equal(tagOf(out(null)), null);
  assert.equal(tagOf({ metadata: { agy_reply: { run: 1, reply: "x" } } }), null);
  assert.deepEqual(tagOf(out(tag(1, 0))), tag(1, 0));
  assert.ok(usesAgy(["x = 1", "%load_ext agy_jupyter"]));
  assert.ok(usesAgy(["%%chat helper\nhi"]));
  assert.ok(!usesAgy(["print('chat')", "# %%chat is not at the start of a line here: x %%chat"]));
});
