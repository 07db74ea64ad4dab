// prettyJson must show arguments and results exactly as the static copy does (transcript.py _pretty):
// both read tests/fixtures/pretty_values.json.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { prettyJson } from "../src/dom.js";

const cases = JSON.parse(readFileSync(new URL("../../tests/fixtures/pretty_values.json", import.meta.url), "utf8"));

test("multi-line strings read as written, the rest as JSON, as in the static copy", () => {
  for (const { value, text } of cases) assert.equal(prettyJson(value), text);
});
