// StreamView: a streamed agent reply.
// Traits: agent, model_name, show_thoughts.
// Kernel -> view: {"type": "ops", "ops": [[kind, payload], ...], "reset": bool}, applied in order;
//   kinds: "text" (Markdown delta), "thought" (delta), "tool_call" {id, name, args},
//   "tool_result" {id, name, status, result}, "status" {status, detail, seconds}, "error" {message, hint},
//   "code" {id, code, language} and "code_result" {id, code, language, outcome, output} (Gemini's
//   code_execution), "citations" {sources: [{title, uri}], supports: [{text, sources}], queries}.
//   reset: true clears the view first (the kernel replays the whole reply).
// View -> kernel: {"type": "rendered"} once rendered (asks for the replay); {"type": "stop"} from Stop.
// Screen readers: the status changes that matter (writing, awaiting approval, waiting for quota, done,
// cancelled, error) are announced through the page's live region (announce.js), once per change: the
// last status of each ops message counts, and a replay that ends where this reply already was says
// nothing. The visible status line is not itself live (its quota countdown would be read every second).
// The Markdown renderer is not in this module: it arrives once per kernel session in agy_assets.js
// (the kernel's AssetsWidget, see assets_channel.js). Until then text shows as plain text, and ops are
// applied as they come; when it arrives the text re-renders as Markdown. If it has not arrived after
// ASSETS_TIMEOUT_MS (globalThis.__agyAssetsTimeoutMs overrides it), a note says so, and the text
// stays plain (it still switches to Markdown if the renderer turns up later).
import { addStyle, countdown, h } from "./dom.js";
import { Transcript } from "./transcript.js";
import { assetsChannel, usableAssets } from "./assets_channel.js";
import { announce, announcer } from "./announce.js";
import baseCss from "./base.css";
import streamCss from "./stream_view.css";

// "continued below": a part of the reply that code output split off (the reply goes on in a new view)
const FINISHED = new Set(["done", "cancelled", "error", "continued below"]);
const ASSETS_TIMEOUT_MS = 10_000;
export const ASSETS_NOTE = "formatting library not loaded";

function assetsTimeoutMs() {
  const ms = Number(globalThis.__agyAssetsTimeoutMs);
  return Number.isFinite(ms) && ms >= 0 ? ms : ASSETS_TIMEOUT_MS;
}

/** The status line's text for a ["status", {...}] op (the quota wait is a live countdown instead). */
export function statusText({ status, detail }) {
  const what = detail ? ` ${detail}` : " tool";
  switch (status) {
    case "thinking": return "Thinking…";
    case "streaming": return "Writing…";
    case "calling tool": return `Calling${what}…`;
    case "awaiting approval": return `Awaiting approval for${what}…`;
    case "waiting for quota": return "Waiting for quota…";
    case "done": return "Done";
    case "cancelled": return "Cancelled";
    case "error": return "Error";
    case "continued below": return "Continued below";
    default: return String(status ?? "");
  }
}

const ANNOUNCED = new Set(["streaming", "awaiting approval", "waiting for quota", "done", "cancelled", "error"]);
const ERROR_CHARS = 200; // the error box has the whole message and the hint

/** What screen readers hear for a status op (null: not announced), e.g. "writer: Awaiting approval for erase".
 *  An error is read with its message: the error op's, else the status's detail (the kernel puts it there). */
export function announcement({ status, detail }, agent, errorMessage) {
  if (!ANNOUNCED.has(status)) return null;
  const what = statusText({ status, detail }).replace(/…$/, "");
  const error = status === "error" ? String(errorMessage || detail || "").slice(0, ERROR_CHARS) : "";
  return `${agent || "Agent"}: ${what}${error ? `: ${error}` : ""}`;
}

// per model (all its views), the last announcement, so two views of one reply do not both speak
const lastAnnounced = new WeakMap();

function render({ model, el }) {
  const agent = h("span", { className: "agy-agent" });
  const modelName = h("span", { className: "agy-model" });
  const status = h("span", { className: "agy-status" });
  const stop = h("button", { type: "button", className: "agy-button agy-stop" }, "Stop");
  const body = h("div", { className: "agy-body" });
  const errorBox = h("div", { className: "agy-error", hidden: true }); // announced with the error status
  const note = h("div", { className: "agy-note agy-assets-note", hidden: true }, ASSETS_NOTE);
  const root = h(
    "div",
    { className: "agy-widget agy-stream" },
    h("div", { className: "agy-header" }, agent, modelName, status, stop),
    note,
    body,
    errorBox,
  );
  addStyle(root, baseCss + streamCss);
  el.append(root);
  announcer(); // in the page before the first announcement

  const transcript = new Transcript(body, errorBox);
  let stopCountdown = () => {};
  let disposed = false;
  let assetsTimer = null;
  let errorMessage = null; // the reply's error, read out with the error status

  /** Switch the text to Markdown once the renderer is published (at once if it already is). */
  function useAssets(assets) {
    if (disposed || !usableAssets(assets) || transcript.Block === assets.MarkdownBlock) return;
    clearTimeout(assetsTimer);
    note.hidden = true;
    if (assets.css) addStyle(root, assets.css);
    transcript.useBlocks(assets.MarkdownBlock);
    root.dataset.formatting = "markdown";
  }

  function setStatus(payload) {
    stopCountdown();
    stopCountdown = () => {};
    root.dataset.status = payload.status ?? "";
    status.title = payload.detail ?? "";
    if (payload.status === "waiting for quota" && Number.isFinite(payload.seconds)) {
      stopCountdown = countdown(payload.seconds, (left) => (status.textContent = `Waiting for quota: ${left} s`));
    } else {
      status.textContent = statusText(payload);
    }
    if (payload.status === "awaiting approval") transcript.markCall(payload.detail, "awaiting approval…");
    if (payload.status === "calling tool") transcript.markCall(payload.detail, "running…");
    const finished = FINISHED.has(payload.status);
    stop.hidden = finished;
    stop.disabled = finished || stop.dataset.sent === "true";
  }

  function reset() {
    transcript.reset();
    stopCountdown();
    status.textContent = "";
    errorMessage = null;
    delete root.dataset.status;
    delete stop.dataset.sent;
    stop.hidden = stop.disabled = false;
  }

  function onMessage(msg) {
    if (!msg || msg.type !== "ops") return;
    if (msg.reset) reset();
    let latest = null;
    for (const op of msg.ops || []) {
      if (op[0] === "status") setStatus((latest = op[1] || {}));
      if (op[0] === "error") errorMessage = op[1]?.message;
      transcript.apply(op); // status ops draw nothing there; its model records them
    }
    if (latest) speak(latest);
  }

  function speak(payload) {
    const text = announcement(payload, model.get("agent"), errorMessage);
    if (text === null || lastAnnounced.get(model) === text) return;
    lastAnnounced.set(model, text);
    announce(text);
  }

  function onStop() {
    stop.disabled = true;
    stop.dataset.sent = "true";
    status.textContent = "Stopping…";
    model.send({ type: "stop" });
  }

  const updateHeader = () => {
    agent.textContent = model.get("agent") || "";
    modelName.textContent = model.get("model_name") || "";
    root.classList.toggle("agy-hide-thoughts", model.get("show_thoughts") === false);
  };
  updateHeader();

  const channel = assetsChannel();
  if (usableAssets(channel.value)) {
    useAssets(channel.value);
  } else {
    root.dataset.formatting = "plain";
    assetsTimer = setTimeout(() => (note.hidden = false), assetsTimeoutMs());
    channel.promise.then(useAssets);
  }

  stop.addEventListener("click", onStop);
  model.on("msg:custom", onMessage);
  for (const name of ["agent", "model_name", "show_thoughts"]) model.on(`change:${name}`, updateHeader);
  model.send({ type: "rendered" }); // only now that msg:custom is heard: the replay comes back at once

  return () => {
    disposed = true;
    clearTimeout(assetsTimer);
    stopCountdown();
    transcript.dispose();
    model.off("msg:custom", onMessage);
    for (const name of ["agent", "model_name", "show_thoughts"]) model.off(`change:${name}`, updateHeader);
  };
}

export default { render };
