// The reply's DOM, built by applying the kernel's ops in order: text blocks, thoughts, tool calls with
// their results, code Gemini ran on its servers with its output, cited web sources, and one error box. Text re-renders are batched to one per animation frame.
// The Markdown renderer is not bundled here (it arrives once per session in agy_assets.js): text and
// thoughts are PlainBlocks until useBlocks(MarkdownBlock) re-renders them, and for good, as Markdown.
import { h, prettyJson } from "./dom.js";

const LONG_JSON_LINES = 12;
const LONG_JSON_CHARS = 1200;

const nextFrame = (fn) =>
  typeof requestAnimationFrame === "function" ? requestAnimationFrame(fn) : setTimeout(fn, 16);
const cancelFrame = (id) =>
  typeof cancelAnimationFrame === "function" ? cancelAnimationFrame(id) : clearTimeout(id);

/** `code` as a Markdown fenced block that no backtick run inside it can close. */
function fenced(code, language) {
  const longest = Math.max(2, ...(code.match(/`+/g) || []).map((run) => run.length));
  const fence = "`".repeat(longest + 1);
  return `${fence}${language.toLowerCase().replace(/[^a-z0-9_+-]/g, "")}\n${code}\n${fence}`;
}

/** A labelled JSON block, collapsed into a <details> when it is long. */
function jsonBlock(label, value, className) {
  const text = prettyJson(value);
  const pre = h("pre", { className: `agy-json ${className}` }, text);
  const lines = text.split("\n").length;
  if (lines <= LONG_JSON_LINES && text.length <= LONG_JSON_CHARS) {
    return h("div", { className: "agy-json-block" }, h("div", { className: "agy-label" }, label), pre);
  }
  return h("details", { className: "agy-json-block" }, h("summary", {}, `${label} (${lines} lines)`), pre);
}

/**
 * The call a result answers: the call with the same non-null id; else the first unanswered call of
 * that name (the Gemini API often sends no ids); else none, and the result gets a block of its own.
 * A result is never attached to a call of another name. Python's Transcript._tool applies the same rule.
 */
export function matchCall(calls, id, name) {
  return (
    (id != null && calls.find((c) => c.id === id)) ||
    calls.find((c) => !c.answered && c.name === name) ||
    null
  );
}

/** The code run a result belongs to: same non-null id; else the last one still running (Python's _code). */
export function matchCode(runs, id) {
  return (id != null && runs.find((r) => r.id === id)) || [...runs].reverse().find((r) => r.outcome === null) || null;
}

const WEB_URI = /^https?:\/\/[^\s<>"']+$/i; // the only links a citation gets (as in the static copy)

/** A source as a link when its URI is http(s), else as text; the title is always text. */
function sourceLink({ title, uri }) {
  const label = String(title || uri || "");
  const href = String(uri ?? "").trim();
  return WEB_URI.test(href) ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, label) : label;
}

/**
 * The reply as data, built from the same ops as the DOM, with no DOM: toJSON() gives the transcript
 * JSON (version 2) that Python's Transcript.to_json() gives for the same events. The shared fixtures
 * in tests/fixtures/transcripts pin that.
 */
export class TranscriptModel {
  constructor({ agent = "", model = "", usage = "" } = {}) {
    this.agent = agent;
    this.model = model;
    this.usage = usage;
    this.status = "thinking";
    this.thoughts = "";
    this.blocks = []; // { type: "text", text } | { type: "tool", id, name, args, status, result, answered }
    this.error = null;
  }

  apply([kind, payload]) {
    if (kind === "text") {
      const last = this.blocks[this.blocks.length - 1];
      if (last?.type === "text") last.text += String(payload);
      else this.blocks.push({ type: "text", text: String(payload) });
    } else if (kind === "thought") {
      this.thoughts += String(payload);
    } else if (kind === "tool_call") {
      const { id = null, name, args } = payload || {};
      this.blocks.push({ type: "tool", id, name, args: args ?? {}, status: "pending", result: null, answered: false });
    } else if (kind === "tool_result") {
      const { id = null, name, status = "ok", result } = payload || {};
      const tools = this.blocks.filter((b) => b.type === "tool");
      let call = matchCall(tools, id, name);
      if (!call) {
        call = { type: "tool", id, name, args: {}, answered: false };
        this.blocks.push(call);
      }
      Object.assign(call, { status, result: result ?? null, answered: true });
    } else if (kind === "code") {
      const { id = null, code = "", language = "python" } = payload || {};
      this.blocks.push({ type: "code_execution", id, code, language, outcome: null, output: null });
    } else if (kind === "code_result") {
      const { id = null, code = "", language = "python", outcome = "", output = "" } = payload || {};
      let run = matchCode(this.blocks.filter((b) => b.type === "code_execution"), id);
      if (!run) {
        run = { type: "code_execution", id, code, language, outcome: null, output: null };
        this.blocks.push(run);
      }
      Object.assign(run, { outcome: String(outcome ?? ""), output: String(output ?? "") });
    } else if (kind === "citations") {
      const { sources = [], supports = [], queries = [] } = payload || {};
      this.blocks.push({ type: "citations", sources, supports, queries });
    } else if (kind === "status") {
      this.status = payload?.status ?? this.status;
    } else if (kind === "error") {
      this.error = { message: String(payload?.message ?? ""), hint: String(payload?.hint ?? "") };
    }
  }

  toJSON() {
    return {
      version: 2,
      agent: this.agent,
      model: this.model,
      status: this.status,
      thoughts: this.thoughts,
      blocks: this.blocks.map((b) => {
        if (b.type === "text") return { type: "text", text: b.text };
        if (b.type === "tool") return { type: "tool", id: b.id, name: b.name, args: b.args, status: b.status, result: b.result };
        return b; // code_execution and citations blocks hold exactly their JSON fields
      }),
      error: this.error,
      usage: this.usage,
    };
  }
}

/** A growing text shown as plain text (textContent, never HTML), with MarkdownBlock's interface. */
export class PlainBlock {
  constructor(el) {
    this.el = el;
    this.text = "";
    this.pre = h("pre", { className: "agy-plain" });
    this.el.append(this.pre);
  }

  append(delta) {
    this.text += delta;
  }

  render() {
    this.pre.textContent = this.text;
  }
}

export class Transcript {
  /** `el` receives the blocks in order; `errorBox` is the view's single error box. */
  constructor(el, errorBox, Block = PlainBlock) {
    this.el = el;
    this.errorBox = errorBox;
    this.Block = Block; // the class of text blocks: PlainBlock or the assets' MarkdownBlock
    this.frame = null;
    this.reset();
  }

  reset() {
    if (this.frame !== null) cancelFrame(this.frame);
    this.frame = null;
    this.el.replaceChildren();
    this.errorBox.replaceChildren();
    this.errorBox.hidden = true;
    this.text = null; // the block that "text" ops append to, if any
    this.thought = null;
    this.dirty = new Set();
    this.blocks = []; // every text and thought block, in order
    this.calls = []; // [{ id, name, el }] in order
    this.runs = []; // [{ id, el, status, outcome }]: Gemini's code runs, in order
    this.model = new TranscriptModel({ agent: this.model?.agent, model: this.model?.model });
  }

  /** Render text blocks with `Block` from now on, and re-render the existing ones with it. */
  useBlocks(Block) {
    if (Block === this.Block) return;
    this.Block = Block;
    this.blocks = this.blocks.map((old) => {
      old.el.replaceChildren();
      const block = new Block(old.el);
      block.append(old.text);
      if (this.text === old) this.text = block;
      if (this.thought === old) this.thought = block;
      this.dirty.delete(old);
      this.markDirty(block);
      return block;
    });
  }

  newBlock(el) {
    const block = new this.Block(el);
    this.blocks.push(block);
    return block;
  }

  apply(op) {
    this.model.apply(op);
    const [kind, payload] = op;
    if (kind === "text") this.appendText(payload);
    else if (kind === "thought") this.appendThought(payload);
    else if (kind === "tool_call") this.addCall(payload || {});
    else if (kind === "tool_result") this.addResult(payload || {});
    else if (kind === "error") this.showError(payload || {});
    else if (kind === "code") this.addCode(payload || {});
    else if (kind === "code_result") this.addCodeResult(payload || {});
    else if (kind === "citations") this.addCitations(payload || {});
  }

  /** Code Gemini runs on its servers: a card with the code (highlighted once the Markdown renderer is
   * here: it is a fenced block of a text block), then its output. */
  addCode({ id = null, code = "", language = "python" }) {
    this.text = this.thought = null;
    const status = h("span", { className: "agy-tool-status" }, "running…");
    const body = h("div", { className: "agy-md agy-code-body" });
    const el = h("div", { className: "agy-code-run", "data-status": "running", "data-language": language },
      h("div", { className: "agy-tool-head" }, "Code run by Gemini ", status), body);
    const block = this.newBlock(body);
    block.append(fenced(String(code), String(language ?? "")));
    this.markDirty(block);
    this.el.append(el);
    this.runs.push({ id, el, status, outcome: null });
  }

  addCodeResult(payload) {
    let run = matchCode(this.runs, payload.id);
    if (!run) {
      this.addCode(payload);
      run = this.runs[this.runs.length - 1];
    }
    this.text = this.thought = null;
    const outcome = (run.outcome = String(payload.outcome ?? ""));
    run.el.dataset.status = outcome === "ok" ? "ok" : "error";
    run.status.textContent = outcome.replace(/_/g, " ") || "done";
    if (payload.output) run.el.append(h("pre", { className: "agy-json agy-output" }, String(payload.output)));
  }

  /** The web sources a reply was grounded in, as numbered links (the static copy adds the claims each supports). */
  addCitations({ sources = [] }) {
    this.text = this.thought = null;
    this.el.append(h("div", { className: "agy-citations agy-md" }, h("div", { className: "agy-label" }, "Sources"),
      h("ol", {}, ...sources.map((s) => h("li", {}, sourceLink(s || {}))))));
  }

  appendText(delta) {
    this.thought = null;
    if (!this.text) {
      this.text = this.newBlock(h("div", { className: "agy-md agy-text" }));
      this.el.append(this.text.el);
    }
    this.text.append(String(delta));
    this.markDirty(this.text);
  }

  appendThought(delta) {
    this.text = null;
    if (!this.thought) {
      const body = h("div", { className: "agy-md agy-thought-text" });
      this.el.append(h("details", { className: "agy-thoughts" }, h("summary", {}, "Thoughts"), body));
      this.thought = this.newBlock(body);
    }
    this.thought.append(String(delta));
    this.markDirty(this.thought);
  }

  addCall({ id, name, args }) {
    this.text = this.thought = null;
    const status = h("span", { className: "agy-tool-status" }, "pending…");
    const el = h(
      "div",
      { className: "agy-tool", "data-status": "running" },
      h("div", { className: "agy-tool-head" }, "Tool call ", h("code", { className: "agy-tool-name" }, String(name ?? "?")), " ", status),
      jsonBlock("Arguments", args ?? {}, "agy-tool-args"),
    );
    this.el.append(el);
    this.calls.push({ id, name, el, status, answered: false });
  }

  /** The call a result answers (see matchCall). */
  findCall(id, name) {
    return matchCall(this.calls, id, name);
  }

  addResult({ id, name, status = "ok", result }) {
    this.text = this.thought = null;
    let call = this.findCall(id, name);
    if (!call) {
      this.addCall({ id, name, args: undefined });
      call = this.calls[this.calls.length - 1];
    }
    call.answered = true;
    call.el.dataset.status = status;
    call.status.textContent = status;
    call.el.querySelector(":scope > .agy-tool-result")?.remove();
    const block = jsonBlock("Result", result ?? null, "agy-tool-result-json");
    block.classList.add("agy-tool-result");
    call.el.append(block);
  }

  /** The open call of tool `name` is waiting for approval, or running: say so on its card. */
  markCall(name, text) {
    const call = this.findCall(null, name);
    if (call && !call.answered) call.status.textContent = text;
  }

  showError({ message, hint }) {
    this.errorBox.replaceChildren(
      h("div", { className: "agy-error-message" }, String(message ?? "Error")),
      hint ? h("div", { className: "agy-error-hint" }, String(hint)) : null,
    );
    this.errorBox.hidden = false;
  }

  markDirty(block) {
    this.dirty.add(block);
    if (this.frame === null) this.frame = nextFrame(() => this.flush());
  }

  /** Render every text block that changed since the last frame. */
  flush() {
    this.frame = null;
    for (const block of this.dirty) block.render();
    this.dirty.clear();
  }

  dispose() {
    if (this.frame !== null) cancelFrame(this.frame);
    this.frame = null;
  }
}
