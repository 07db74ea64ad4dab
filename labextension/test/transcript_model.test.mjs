// The shared transcript fixtures (tests/fixtures/transcripts/*.json): the ops Python's Transcript
// emitted for a sequence of turn events, and the transcript JSON (version 2) it produced. The JS
// model applying the same ops must produce the same JSON; tests/test_transcript.py checks Python.
import "./dom_env.mjs";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { Transcript, TranscriptModel } from "../src/transcript.js";

const DIR = new URL("../../tests/fixtures/transcripts/", import.meta.url);
const fixtures = readdirSync(DIR).filter((name) => name.endsWith(".json")).sort();

test("there are shared fixtures to check", () => {
  assert.ok(fixtures.length >= 5);
  assert.ok(fixtures.includes("orphan_results.json") && fixtures.includes("parallel_same_name_without_ids.json"));
});

for (const name of fixtures) {
  const { ops, transcript } = JSON.parse(readFileSync(new URL(name, DIR), "utf8"));

  test(`${name}: the JS model gives Python's transcript JSON`, () => {
    const model = new TranscriptModel({ agent: transcript.agent, model: transcript.model, usage: transcript.usage });
    for (const op of ops) model.apply(op);
    assert.deepEqual(JSON.parse(JSON.stringify(model)), transcript);
  });

  test(`${name}: the DOM transcript keeps its model in step and draws one card per tool block`, () => {
    const body = document.createElement("div");
    const dom = new Transcript(body, document.createElement("div"));
    for (const op of ops) dom.apply(op);
    const expected = transcript.blocks.filter((b) => b.type === "tool");
    const cards = [...body.querySelectorAll(".agy-tool")];
    assert.deepEqual(
      cards.map((c) => [c.querySelector(".agy-tool-name").textContent, c.dataset.status]),
      expected.map((b) => [b.name, b.status === "pending" ? "running" : b.status]),
    );
    const json = dom.model.toJSON();
    assert.deepEqual([json.blocks, json.thoughts, json.error], [transcript.blocks, transcript.thoughts, transcript.error]);
    dom.dispose();
  });
}
