// The static copy of a finished reply, drawn as the live StreamView draws it. It is what the JupyterLab
// extension's renderer for application/vnd.agy.transcript+json shows (lab/mime.ts), and what its
// commands read (the reply's code, a cell's error).
// The JSON (transcript.py static_json, version 2) holds everything but the prose: text blocks carry
// only `chars`, and the thoughts only their length. The prose is in the same output's text/html,
// sanitized by Python (nh3): text block i is the i-th `.agy-text` child of its root, the thoughts its
// `.agy-thoughts .agy-thought-text`. That HTML is parsed inert (DOMParser: no script, no load) and
// sanitized again by the live widget's DOMPurify allowlist before it reaches the page. Tool calls,
// code runs, citations and the error box come from the JSON through the live widget's Transcript.
import { h } from "./dom.js";
import { sanitizeHtml } from "./render_markdown.js";
import { Transcript } from "./transcript.js";

export const TRANSCRIPT_MIME = "application/vnd.agy.transcript+json";
export const TRANSCRIPT_VERSION = 2;
const STATUS_WORDS = { done: "Done", error: "Error", cancelled: "Cancelled", "continued below": "Continued below" }; // as stream_view.js statusText

/** The static copy's root element in `html` (parsed inert), or null. */
function staticRoot(html) {
  if (typeof html !== "string" || !html) return null;
  const doc = new DOMParser().parseFromString(html, "text/html");
  return doc.querySelector(".agy-static");
}

const children = (root, className) => (root ? [...root.children].filter((el) => el.classList.contains(className)) : []);

/** An element whose content is `html` after the live widget's sanitizer. */
function sanitizedBlock(className, html) {
  const el = h("div", { className });
  el.innerHTML = sanitizeHtml(html);
  return el;
}

/** The ops the live widget would have received for a JSON block that is not text. */
function blockOps(block) {
  if (block.type === "tool") {
    const { id = null, name, args, status = "pending", result = null } = block;
    const call = ["tool_call", { id, name, args }];
    return status === "pending" ? [call] : [call, ["tool_result", { id, name, status, result }]];
  }
  if (block.type === "code_execution") {
    const code = ["code", { id: block.id ?? null, code: block.code ?? "", language: block.language ?? "python" }];
    return block.outcome === null || block.outcome === undefined ? [code] : [code, ["code_result", block]];
  }
  if (block.type === "citations") return [["citations", block]];
  return [];
}

/**
 * The reply as a DOM tree: `data` is the transcript JSON, `html` the output's text/html (or "").
 * Returns the root element (class agy-widget agy-stream agy-transcript, data-status).
 */
export function renderStaticTranscript(data, html) {
  data = data && typeof data === "object" ? data : {};
  const source = staticRoot(html);
  const texts = children(source, "agy-text");
  const status = String(data.status ?? "");
  const statusEl = h("span", { className: "agy-status" }, STATUS_WORDS[status] ?? status);
  const body = h("div", { className: "agy-body" });
  const errorBox = h("div", { className: "agy-error", hidden: true });
  const root = h(
    "div",
    { className: "agy-widget agy-stream agy-transcript", "data-status": status, "data-formatting": "markdown" },
    h("div", { className: "agy-header" }, h("span", { className: "agy-agent" }, String(data.agent ?? "")),
      h("span", { className: "agy-model" }, String(data.model ?? "")), statusEl),
    body,
    errorBox,
  );
  const transcript = new Transcript(body, errorBox);
  const thoughts = source?.querySelector(":scope > .agy-thoughts .agy-thought-text");
  if (thoughts) {
    body.append(h("details", { className: "agy-thoughts" }, h("summary", {}, "Thoughts"),
      sanitizedBlock("agy-md agy-thought-text", thoughts.innerHTML)));
  }
  let textIndex = 0;
  let missing = 0;
  for (const block of Array.isArray(data.blocks) ? data.blocks : []) {
    if (block?.type === "text") {
      const el = texts[textIndex++];
      if (el) body.append(sanitizedBlock("agy-md agy-text", el.innerHTML));
      else missing += 1;
    } else if (block && typeof block === "object") {
      for (const op of blockOps(block)) transcript.apply(op);
    }
  }
  if (data.error) transcript.apply(["error", data.error]);
  if (missing) {
    body.append(h("div", { className: "agy-note" },
      `${missing} text ${missing === 1 ? "block is" : "blocks are"} missing: the reply's text is kept in its text/html copy.`));
  }
  if (data.version !== undefined && data.version !== TRANSCRIPT_VERSION) {
    root.append(h("div", { className: "agy-note" }, `Transcript version ${data.version}: this extension reads version ${TRANSCRIPT_VERSION}.`));
  }
  if (data.usage) root.append(h("div", { className: "agy-note agy-footer" }, String(data.usage)));
  transcript.dispose();
  return root;
}

/** The code blocks of a reply's text (from its text/html copy), in order, as plain text. */
export function codeFromReply(html) {
  return children(staticRoot(html), "agy-text").flatMap((block) =>
    [...block.querySelectorAll("pre > code")].map((code) => code.textContent.replace(/\n$/, "")));
}

const ANSI = /\u001b\[[0-9;?]*[A-Za-z]/g;

/** A cell's error outputs as text (the traceback without terminal colours), or "". */
export function errorText(outputs) {
  return (outputs || [])
    .filter((o) => o?.output_type === "error")
    .map((o) => (Array.isArray(o.traceback) && o.traceback.length ? o.traceback.join("\n") : `${o.ename}: ${o.evalue}`))
    .join("\n")
    .replace(ANSI, "");
}

/** A fence longer than any run of backticks in `text`, so the quoted text cannot close it. */
function fence(text) {
  const longest = Math.max(2, ...(String(text).match(/`+/g) || []).map((run) => run.length));
  return "`".repeat(longest + 1);
}

/** The source of a %%chat cell asking about a cell: its source, and its error if it has one. */
export function askAboutCell(source, error = "", language = "python") {
  const quote = (text, lang = "") => `${fence(text)}${lang}\n${String(text).replace(/\n+$/, "")}\n${fence(text)}`;
  const lines = ["%%chat", error ? "Why does this cell fail, and how do I fix it?" : "Explain this cell.", "",
    quote(source, language)];
  if (error) lines.push("", "The error:", "", quote(error));
  return lines.join("\n");
}
