// ApprovalView: asks the user to approve or deny one tool call.
// Traits: agent, tool, args_json (pretty JSON text), preview ({} or {kind: "code" | "command" | "diff",
//   text, language}: exactly what will run, shown instead of the arguments, which stay one click away),
//   state ("pending" | "approved" | "denied" | "timeout" | "cancelled"), reason, timeout_seconds
//   (0 = none; a countdown while pending).
// View -> kernel: {"type": "rendered"} once rendered;
//   {"type": "decision", "approved": bool, "reason": str, "always": bool, "scope": "args" | "tool"} on
//   Approve / Deny ("always" only with Approve; scope "args": only later calls with these arguments).
// Keyboard: the tab order is Approve, Deny, Reason, "always" (then its scope); Enter or Space on a
//   button clicks it, and Enter in Reason is Deny with that reason (the reason only goes with Deny).
//   A card that appears pending takes the focus itself (not Approve: a stray Enter or Shift+Enter meant
//   for the notebook must not approve anything), unless the user is typing (an editor, a text field),
//   busy with another pending card or working outside the card's notebook. After a decision the focus stays on the card, and when the card goes
//   (the reply ended) it moves to the card's notebook cell, not to the page.
// Code is highlighted by the renderer agy_assets.js publishes (a fenced block through its sanitizing
// Markdown renderer) once it is there; until then, or without it, it is plain text in <code class="language-X">.
import { assetsChannel, usableAssets } from "./assets_channel.js";
import { addStyle, countdown, h } from "./dom.js";
import baseCss from "./base.css";
import approvalCss from "./approval_view.css";

/** The outcome line for a final state (or for the user's own click while the kernel catches up). */
export function outcomeText(state, reason) {
  switch (state) {
    case "approved": return "Approved";
    case "denied": return reason ? `Denied: ${reason}` : "Denied";
    case "timeout": return "Timed out: denied";
    case "cancelled": return "Cancelled";
    default: return "";
  }
}

const LANGUAGE = /^[A-Za-z0-9_+-]{1,32}$/;

/** The class of one line of a unified diff. */
export function diffLineClass(line) {
  if (line.startsWith("+++") || line.startsWith("---")) return "agy-diff-file";
  if (line.startsWith("@@")) return "agy-diff-hunk";
  if (line.startsWith("+")) return "agy-diff-add";
  if (line.startsWith("-")) return "agy-diff-del";
  return "agy-diff-context";
}

/** A fenced Markdown block holding `text` verbatim (the fence is longer than any backtick run in it). */
function fenced(text, language) {
  const longest = Math.max(0, ...(text.match(/`+/g) || []).map((run) => run.length));
  const fence = "`".repeat(Math.max(3, longest + 1));
  return `${fence}${language}\n${text}\n${fence}\n`;
}

/** Fill `box` with a preview; `assets` (optional) highlights code. Text goes in as text, never as HTML,
 *  except the assets' own sanitized rendering. */
export function renderPreview(box, preview, assets) {
  box.replaceChildren();
  const kind = preview?.kind;
  const text = typeof preview?.text === "string" ? preview.text : "";
  box.dataset.kind = kind || "";
  if (kind === "diff") {
    const pre = h("pre", { className: "agy-preview-diff" });
    for (const line of text.split("\n")) pre.append(h("span", { className: `agy-diff-line ${diffLineClass(line)}` }, line), "\n");
    box.append(pre);
  } else if (kind === "command") {
    box.append(h("pre", { className: "agy-preview-command" }, h("span", { className: "agy-prompt", "aria-hidden": "true" }, "$ "), h("code", {}, text)));
  } else {
    const language = LANGUAGE.test(preview?.language || "") ? preview.language.toLowerCase() : "";
    if (usableAssets(assets) && typeof assets.renderMarkdown === "function") {
      const block = h("div", { className: "agy-preview-code agy-highlighted" });
      block.innerHTML = assets.renderMarkdown(fenced(text, language));
      box.append(block);
    } else {
      const code = h("code", { className: language ? `language-${language}` : "" }, text);
      box.append(h("pre", { className: "agy-preview-code" }, code));
    }
  }
}

/** Is the user busy: typing (the focus in a code editor, CodeMirror's contenteditable, or a text field),
 *  deciding another approval card still waiting, or working outside the card's notebook (a sidebar, another
 *  panel)? Then a new card leaves the focus where it is. */
export function userIsBusy(active, card) {
  if (!active || active === document.body || active === document.documentElement) return false;
  const notebook = card?.closest(".jp-Notebook");
  if (notebook && !notebook.contains(active)) return true;
  if (active.isContentEditable || active.closest?.(".cm-editor, .CodeMirror")) return true;
  if (/^(TEXTAREA|SELECT)$/.test(active.tagName)) return true;
  if (active.tagName === "INPUT" && !/^(button|checkbox|radio|submit|reset)$/.test(active.type)) return true;
  return !!active.closest?.('.agy-approval[data-state="pending"]');
}

// models whose card already took the focus once (a re-render, e.g. a second view, must not take it again)
const focusTaken = new WeakSet();

/** Once the card is in the page: focus it unless the user is busy. */
function takeFocusWhenShown(root, model) {
  if (focusTaken.has(model)) return;
  let frames = 0;
  const attempt = () => {
    if (!root.isConnected) {
      if (++frames < 60) requestAnimationFrame(attempt); // anywidget attaches `el` after render
      return;
    }
    if (focusTaken.has(model) || root.dataset.state !== "pending") return;
    focusTaken.add(model);
    if (userIsBusy(document.activeElement, root)) return;
    root.focus({ preventScroll: true });
    root.scrollIntoView?.({ block: "nearest" }); // a focus out of sight helps nobody; scroll as little as needed
  };
  requestAnimationFrame(attempt);
}

const hasPreview = (preview) => !!preview && typeof preview === "object" && typeof preview.kind === "string" && preview.kind !== "";

function render({ model, el }) {
  const agent = h("strong", { className: "agy-agent" });
  const tool = h("code", { className: "agy-tool-name" });
  const args = h("pre", { className: "agy-json agy-approval-args" });
  const previewBox = h("div", { className: "agy-preview", hidden: true });
  const argsDetails = h("details", { className: "agy-args-details" }, h("summary", {}, "Arguments"));
  const argsSlot = h("div", { className: "agy-args-slot" });
  const ids = Math.random().toString(36).slice(2);
  const reason = h("input", { type: "text", className: "agy-reason", id: `agy-reason-${ids}`, placeholder: "optional; Enter denies with it" });
  const always = h("input", { type: "checkbox", className: "agy-always" });
  const alwaysText = h("span");
  const scopeArgs = h("input", { type: "radio", name: "agy-scope", value: "args", className: "agy-scope-args", checked: true });
  const scopeTool = h("input", { type: "radio", name: "agy-scope", value: "tool", className: "agy-scope-tool" });
  const scopeBox = h(
    "span",
    { className: "agy-always-scope", role: "radiogroup", "aria-label": "Always allow for" },
    h("label", {}, scopeArgs, " only these arguments"),
    h("label", {}, scopeTool, " any arguments"),
  );
  const approve = h("button", { type: "button", className: "agy-button agy-approve" }, "Approve");
  const deny = h("button", { type: "button", className: "agy-button agy-deny" }, "Deny");
  const timer = h("span", { className: "agy-countdown", hidden: true });
  const outcome = h("div", { className: "agy-outcome", role: "status", "aria-live": "polite" });
  // The DOM order is the tab order: the decision first, then what goes with it.
  const root = h(
    "div",
    { className: "agy-widget agy-approval", role: "group", "aria-labelledby": `agy-approval-head-${ids}`, tabindex: "-1" },
    h("div", { className: "agy-header", id: `agy-approval-head-${ids}` }, agent, " wants to call ", tool),
    previewBox,
    argsSlot,
    h("div", { className: "agy-actions" }, approve, deny, timer),
    h("div", { className: "agy-reason-label" }, h("label", { for: reason.id }, "Reason"), reason),
    h("div", { className: "agy-always-row" }, h("label", { className: "agy-always-label" }, always, alwaysText), scopeBox),
    outcome,
  );
  addStyle(root, baseCss + approvalCss);
  el.append(root);

  let decided = null; // the decision this view sent, until the kernel moves `state` on
  let stopCountdown = () => {};
  let disposed = false;
  const channel = assetsChannel();
  let highlighter = usableAssets(channel.value) ? channel.value : null;
  if (highlighter?.css) addStyle(root, highlighter.css);
  // radio groups are page-wide by name: one group per view
  scopeArgs.name = scopeTool.name = `agy-scope-${ids}`;

  function showPreview() {
    const preview = model.get("preview");
    const shown = hasPreview(preview);
    previewBox.hidden = !shown;
    if (shown) {
      renderPreview(previewBox, preview, highlighter);
      if (args.parentNode !== argsDetails) argsDetails.append(args);
      if (argsDetails.parentNode !== argsSlot) argsSlot.replaceChildren(argsDetails);
    } else if (args.parentNode !== argsSlot) {
      argsSlot.replaceChildren(args);
    }
  }

  function update() {
    const state = model.get("state") || "pending";
    if (state !== "pending") decided = null;
    const open = state === "pending" && !decided;
    agent.textContent = model.get("agent") || "The agent";
    tool.textContent = model.get("tool") || "a tool";
    alwaysText.textContent = ` Always allow ${model.get("tool") || "this tool"} for this agent`;
    args.textContent = model.get("args_json") || "";
    for (const control of [reason, always, approve, deny]) control.disabled = !open;
    for (const control of [scopeArgs, scopeTool]) control.disabled = !open || !always.checked;
    root.dataset.state = decided ? (decided.approved ? "approved" : "denied") : state;
    outcome.textContent = decided
      ? outcomeText(decided.approved ? "approved" : "denied", decided.reason)
      : outcomeText(state, model.get("reason"));
    if (!open) stopCountdown();
    timer.hidden = !open || !(model.get("timeout_seconds") > 0);
  }

  function startCountdown() {
    stopCountdown();
    const seconds = model.get("timeout_seconds");
    if (!(seconds > 0) || model.get("state") !== "pending") return;
    stopCountdown = countdown(seconds, (left) => (timer.textContent = `Auto-deny in ${left} s`));
  }

  function decide(approved) {
    const hadFocus = root.contains(document.activeElement);
    decided = { approved, reason: reason.value.trim() };
    // "Always allow" only makes sense for an approval.
    model.send({
      type: "decision", approved, reason: decided.reason, always: approved && always.checked,
      scope: scopeTool.checked ? "tool" : "args",
    });
    update();
    if (hadFocus) root.focus({ preventScroll: true }); // the disabled button would drop it on the page
  }

  const onApprove = () => decide(true);
  const onDeny = () => decide(false);
  const onReasonKey = (event) => {
    if (event.key !== "Enter" || event.isComposing || event.shiftKey || event.ctrlKey || event.altKey || event.metaKey) return;
    event.preventDefault();
    event.stopPropagation(); // not JupyterLab's Enter
    if (!reason.disabled) decide(false);
  };
  const onState = () => (update(), startCountdown());
  const onPreview = () => showPreview();
  always.addEventListener("change", update);
  approve.addEventListener("click", onApprove);
  deny.addEventListener("click", onDeny);
  reason.addEventListener("keydown", onReasonKey);
  const traits = ["agent", "tool", "args_json", "reason"];
  for (const name of traits) model.on(`change:${name}`, update);
  model.on("change:state", onState);
  model.on("change:timeout_seconds", onState);
  model.on("change:preview", onPreview);
  showPreview();
  if (!highlighter) {
    channel.promise.then((assets) => {
      if (disposed || !usableAssets(assets)) return;
      highlighter = assets;
      if (assets.css) addStyle(root, assets.css);
      showPreview();
    });
  }
  // When the reply ends, its static copy replaces this card: a focus inside it would fall to the page
  // (JupyterLab's keys would stop working), so it goes to the card's notebook cell instead.
  let focusHome = null;
  const onFocusIn = () => (focusHome = root.closest(".jp-Cell"));
  const onFocusOut = (event) => { if (event.relatedTarget) focusHome = null; };
  root.addEventListener("focusin", onFocusIn);
  root.addEventListener("focusout", onFocusOut);
  function handBackFocus() {
    const lost = !document.activeElement || document.activeElement === document.body || root.contains(document.activeElement);
    if (focusHome?.isConnected && lost) focusHome.focus({ preventScroll: true });
  }

  update();
  startCountdown();
  takeFocusWhenShown(root, model);
  model.send({ type: "rendered" });

  return () => {
    disposed = true;
    stopCountdown();
    handBackFocus();
    model.off("change:preview", onPreview);
    for (const name of traits) model.off(`change:${name}`, update);
    model.off("change:state", onState);
    model.off("change:timeout_seconds", onState);
  };
}

export default { render };
