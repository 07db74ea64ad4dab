// ApprovalView: asks the user to approve or deny one tool call.
// Traits: agent, tool, args_json (pretty JSON text), state ("pending" | "approved" | "denied" |
//   "timeout" | "cancelled"), reason, timeout_seconds (0 = none; a countdown while pending).
// View -> kernel: {"type": "rendered"} once rendered;
//   {"type": "decision", "approved": bool, "reason": str, "always": bool} on Approve / Deny.
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

function render({ model, el }) {
  const agent = h("strong", { className: "agy-agent" });
  const tool = h("code", { className: "agy-tool-name" });
  const args = h("pre", { className: "agy-json agy-approval-args" });
  const reason = h("input", { type: "text", className: "agy-reason", "aria-label": "Reason", placeholder: "optional, sent with Deny" });
  const always = h("input", { type: "checkbox", className: "agy-always" });
  const alwaysText = h("span");
  const approve = h("button", { type: "button", className: "agy-button agy-approve" }, "Approve");
  const deny = h("button", { type: "button", className: "agy-button agy-deny" }, "Deny");
  const timer = h("span", { className: "agy-countdown", hidden: true });
  const outcome = h("div", { className: "agy-outcome", role: "status", "aria-live": "polite" });
  const root = h(
    "div",
    { className: "agy-widget agy-approval" },
    h("div", { className: "agy-header" }, agent, " wants to call ", tool),
    args,
    h("label", { className: "agy-reason-label" }, h("span", {}, "Reason"), reason),
    h("label", { className: "agy-always-label" }, always, alwaysText),
    h("div", { className: "agy-actions" }, approve, deny, timer),
    outcome,
  );
  addStyle(root, baseCss + approvalCss);
  el.append(root);

  let decided = null; // the decision this view sent, until the kernel moves `state` on
  let stopCountdown = () => {};

  function update() {
    const state = model.get("state") || "pending";
    if (state !== "pending") decided = null;
    const open = state === "pending" && !decided;
    agent.textContent = model.get("agent") || "The agent";
    tool.textContent = model.get("tool") || "a tool";
    alwaysText.textContent = ` Always allow ${model.get("tool") || "this tool"} for this agent`;
    args.textContent = model.get("args_json") || "";
    for (const control of [reason, always, approve, deny]) control.disabled = !open;
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
    decided = { approved, reason: reason.value.trim() };
    // "Always allow" only makes sense for an approval.
    model.send({ type: "decision", approved, reason: decided.reason, always: approved && always.checked });
    update();
  }

  const onApprove = () => decide(true);
  const onDeny = () => decide(false);
  const onState = () => (update(), startCountdown());
  approve.addEventListener("click", onApprove);
  deny.addEventListener("click", onDeny);
  const traits = ["agent", "tool", "args_json", "reason"];
  for (const name of traits) model.on(`change:${name}`, update);
  model.on("change:state", onState);
  model.on("change:timeout_seconds", onState);
  update();
  startCountdown();
  model.send({ type: "rendered" });

  return () => {
    stopCountdown();
    for (const name of traits) model.off(`change:${name}`, update);
    model.off("change:state", onState);
    model.off("change:timeout_seconds", onState);
  };
}

export default { render };
