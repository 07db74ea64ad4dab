// The status-bar item: replies streaming (with Stop), approvals waiting (click to go to the cell), the session's
// tokens and estimated cost, for the current notebook's kernel. The kernel opens one comm, target
// agy_jupyter.status, at `%load_ext agy_jupyter` (agy_jupyter/notebook/lab_status.py) and sends the whole
// small state on each change. The target is registered on every kernel connection a notebook gets; a
// restarted kernel is a new connection with no state, so the item is hidden until %load_ext runs again.
import { JupyterFrontEnd } from "@jupyterlab/application";
import { INotebookTracker, NotebookPanel } from "@jupyterlab/notebook";
import { Kernel, KernelMessage } from "@jupyterlab/services";
import { IStatusBar } from "@jupyterlab/statusbar";
import { ISignal, Signal } from "@lumino/signaling";
import { Widget } from "@lumino/widgets";
import { COMMANDS } from "./commands.js";

export const STATUS_TARGET = "agy_jupyter.status";

export type Approval = { agent: string; tool: string; cell: string | null };
export type AgentStatus = { streaming: number; approvals: Approval[]; tokens: number; cost: number | null };

const plural = (n: number, one: string, many: string): string => `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;

/** The item's parts as text (no emoji: Debian's Chromium has no emoji font). */
export function statusTexts(state: AgentStatus): { streaming: string; approvals: string; usage: string } {
  const cost = state.cost === null ? "" : state.cost > 0 && state.cost < 0.00005 ? " · <$0.0001 est." : ` · ≈$${state.cost.toFixed(4)} est.`;
  return {
    streaming: `${plural(state.streaming, "agent", "agents")} streaming`,
    approvals: state.approvals.length ? `${plural(state.approvals.length, "approval", "approvals")} waiting` : "",
    usage: `${plural(state.tokens, "token", "tokens")}${cost}`,
  };
}

/** The item: text spans, and a button for the waiting approvals that goes to the first one's cell. */
class StatusWidget extends Widget {
  private streaming = document.createElement("span");
  private approvals = document.createElement("button");
  private usage = document.createElement("span");
  private stop = document.createElement("button");
  state: AgentStatus | null = null;
  private changed = new Signal<this, void>(this);
  /** The status bar shows the item only while a kernel with agy_jupyter loaded sends it a state. */
  get activeStateChanged(): ISignal<this, void> { return this.changed; }

  constructor(private onApprovals: (approval: Approval) => void, onStop: () => void) {
    super();
    this.addClass("agy-statusbar");
    this.node.setAttribute("role", "status");
    this.approvals.className = "agy-statusbar-approvals";
    this.approvals.type = "button";
    this.approvals.addEventListener("click", () => {
      const first = this.state?.approvals[0];
      if (first) this.onApprovals(first);
    });
    this.stop.className = "agy-statusbar-stop";
    this.stop.type = "button";
    this.stop.textContent = "Stop";
    this.stop.title = "Stop every agent reply running in this notebook's kernel";
    this.stop.setAttribute("aria-label", "Stop agents");
    this.stop.addEventListener("click", onStop);
    this.node.append(this.streaming, this.stop, this.approvals, this.usage);
    this.render(null);
  }

  render(state: AgentStatus | null): void {
    const shownBefore = this.state !== null;
    this.state = state;
    if (shownBefore !== (state !== null)) this.changed.emit();
    if (!state) return;
    const text = statusTexts(state);
    this.streaming.textContent = `Agents: ${text.streaming}`;
    this.stop.hidden = state.streaming === 0;
    this.approvals.textContent = text.approvals;
    this.approvals.hidden = !text.approvals;
    this.approvals.title = state.approvals.length ? `Go to the cell of ${state.approvals[0].agent}'s ${state.approvals[0].tool} approval` : "";
    this.usage.textContent = ` · ${text.usage}`;
    this.node.setAttribute("aria-label", ["Agents", text.streaming, text.approvals, text.usage].filter(Boolean).join(", "));
    this.node.title = "agy_jupyter agents in this notebook's kernel; costs are estimates";
  }
}

/** Follow every notebook's kernel: states by kernel connection, the item shows the current notebook's. */
export function addStatusItem(app: JupyterFrontEnd, tracker: INotebookTracker, statusBar: IStatusBar): void {
  const states = new WeakMap<Kernel.IKernelConnection, AgentStatus>();
  const registered = new WeakSet<Kernel.IKernelConnection>();
  const widget = new StatusWidget((approval) => void goToCell(app, tracker, approval),
    () => void app.commands.execute(COMMANDS.stop));

  const refresh = (): void => {
    const kernel = tracker.currentWidget?.sessionContext.session?.kernel;
    widget.render((kernel && states.get(kernel)) ?? null);
  };

  const watch = (kernel: Kernel.IKernelConnection | null | undefined): void => {
    if (!kernel || registered.has(kernel)) return;
    registered.add(kernel);
    const attach = (comm: Kernel.IComm): void => {
      comm.onMsg = (msg) => { states.set(kernel, msg.content.data as AgentStatus); refresh(); };
      comm.onClose = () => { states.delete(kernel); refresh(); };
    };
    kernel.registerCommTarget(STATUS_TARGET, (comm: Kernel.IComm, open: KernelMessage.ICommOpenMsg) => {
      attach(comm);
      states.set(kernel, open.content.data as AgentStatus);
      refresh();
    });
    // A page (re)loaded after %load_ext missed the comm_open: find the open comm and ask for the state.
    kernel.requestCommInfo({ target_name: STATUS_TARGET }).then((reply) => {
      const ids = reply.content.status === "ok" ? Object.keys(reply.content.comms) : [];
      const id = ids[ids.length - 1];
      if (!id || kernel.hasComm(id)) return;
      const comm = kernel.createComm(STATUS_TARGET, id);
      attach(comm);
      comm.send({ action: "state" });
    }).catch(() => undefined); // a kernel that is gone or restarting: its next connection asks again
    kernel.statusChanged.connect((_, status) => {
      if (status === "restarting" || status === "autorestarting" || status === "dead") {
        states.delete(kernel);
        refresh();
      }
    });
  };

  const follow = (panel: NotebookPanel): void => {
    watch(panel.sessionContext.session?.kernel);
    panel.sessionContext.kernelChanged.connect((_, change) => { watch(change.newValue); refresh(); });
  };
  tracker.forEach(follow);
  tracker.widgetAdded.connect((_, panel) => follow(panel));
  tracker.currentChanged.connect(refresh);

  statusBar.registerStatusItem("agy-jupyter:status", {
    item: widget, align: "left", rank: 4, isActive: () => widget.state !== null, activeStateChanged: widget.activeStateChanged,
  });
}

/** Activate the notebook whose kernel asks and select the asking cell. */
async function goToCell(app: JupyterFrontEnd, tracker: INotebookTracker, approval: Approval): Promise<void> {
  const panel = tracker.currentWidget;
  if (!panel || !approval.cell) return;
  const notebook = panel.content;
  const index = notebook.widgets.findIndex((cell) => cell.model.id === approval.cell);
  if (index < 0) return;
  app.shell.activateById(panel.id);
  notebook.deselectAll();
  notebook.activeCellIndex = index;
  notebook.mode = "command";
  await notebook.scrollToCell(notebook.widgets[index], "center");
  // The approval's first button takes the focus, so Enter / Tab act on it right away.
  notebook.widgets[index].node.querySelector<HTMLElement>(".agy-approval button")?.focus();
}
