// Taking up replies after a page reload. JupyterLab and Notebook 7 route a cell's outputs only to the page that
// ran the cell: after a reload, what the kernel sends for a reply that is still running reaches no cell, and the
// static copy it leaves at the end is lost. Every output of a reply names its cell in its metadata (agy_reply:
// cell id, kernel run, reply number, part, final; agy_jupyter/notebook/reattach.py). For each notebook's kernel
// connection this plugin
// - puts such outputs sent for another front-end session's request (an earlier page) into their cell, and
// - once connected, if the notebook uses agy_jupyter and the kernel has it loaded, asks it to show its replies again
//   ({action: "reattach"} on agy_jupyter.control): the live widget comes back, replays the text so far and goes
//   on streaming, and the static copy replaces it when the reply ends.
import { INotebookTracker, NotebookPanel } from "@jupyterlab/notebook";
import { Kernel, KernelMessage } from "@jupyterlab/services";
import { CONTROL_TARGET } from "./commands.js";
import { Output, placement, tagOf, usesAgy } from "./reattach_place.js";
import { STATUS_TARGET } from "./status.js";

type CellOutputs = {
  length: number;
  add(output: Output): number;
  set(index: number, output: Output): void;
  clear(): void;
  toJSON(): Output[];
};
type CodeCell = { id: string; type: string; outputs: CellOutputs; trusted: boolean };

/** Put a reply's display or update into its cell of `panel`'s notebook. */
function place(panel: NotebookPanel, msg: KernelMessage.IDisplayDataMsg | KernelMessage.IUpdateDisplayDataMsg): void {
  const output: Output = { output_type: "display_data", data: msg.content.data, metadata: msg.content.metadata as Record<string, unknown> };
  const tag = tagOf(output);
  const cells = panel.content.model?.cells;
  if (!tag?.cell || !cells) return;
  let cell: CodeCell | undefined;
  for (const candidate of cells) {
    if (candidate.id === tag.cell && candidate.type === "code") cell = candidate as unknown as CodeCell;
  }
  if (!cell) return;
  const outputs = cell.outputs.toJSON();
  const where = placement(outputs, tag, msg.header.msg_type === "display_data");
  if (!where) return;
  const ours = (o: Output) => { const t = tagOf(o); return t?.run === tag.run && t.reply === tag.reply; };
  if (where.kind === "replace-all") {
    cell.outputs.clear();
    cell.trusted = true; // the user ran this cell in this kernel: trusted as if run in this page
    cell.outputs.add(output);
  } else if (where.kind === "set") {
    cell.outputs.set(where.index, output);
  } else if (where.index >= outputs.length) {
    cell.outputs.add(output);
  } else {
    outputs.splice(where.index, 0, output);
    cell.outputs.clear();
    outputs.forEach((o) => cell!.outputs.add(o));
  }
  if (!cell.trusted && outputs.every(ours)) cell.trusted = true;
}

const COMM_INFO_WAIT_MS = 2000;

/** Ask the kernel to show its replies again ({action: "reattach"}); it answers and closes the comm.
 * Only if agy_jupyter is loaded there (its status comm is open): a kernel without the comm target logs an error.
 * But while a %%chat cell runs, the kernel answers comm_info (and kernel_info) requests only when the cell ends,
 * while it handles a comm_open at once (measured after a reload, ipykernel 7.4): a kernel that has not answered
 * within COMM_INFO_WAIT_MS is busy in a cell, most likely a reply, and is asked anyway. */
async function askForReplies(kernel: Kernel.IKernelConnection): Promise<void> {
  const loaded = kernel.requestCommInfo({ target_name: STATUS_TARGET })
    .then((reply) => reply.content.status === "ok" && Object.keys(reply.content.comms).length > 0);
  const busy = new Promise<"busy">((resolve) => setTimeout(() => resolve("busy"), COMM_INFO_WAIT_MS));
  if ((await Promise.race([loaded, busy])) === false) return;
  kernel.createComm(CONTROL_TARGET).open({ action: "reattach" });
}

export function addReattach(tracker: INotebookTracker): void {
  const routed = new WeakSet<Kernel.IKernelConnection>();
  const route = (kernel: Kernel.IKernelConnection): void => {
    if (routed.has(kernel)) return;
    routed.add(kernel);
    kernel.iopubMessage.connect((_, msg) => {
      const type = msg.header.msg_type;
      if (type !== "display_data" && type !== "update_display_data") return;
      if ((msg.parent_header as { session?: string }).session === kernel.clientId) return; // this page's: routed already
      const models = new Set<unknown>();
      tracker.forEach((panel) => {
        if (panel.sessionContext.session?.kernel !== kernel || models.has(panel.content.model)) return;
        models.add(panel.content.model);
        place(panel, msg as KernelMessage.IDisplayDataMsg);
      });
    });
  };
  const follow = (panel: NotebookPanel): void => {
    let current: Kernel.IKernelConnection | null = null;
    const ask = (kernel: Kernel.IKernelConnection): void => {
      void panel.context.ready.then(() => {
        const cells = panel.content.model?.cells;
        const sources = cells ? Array.from(cells, (cell) => cell.sharedModel.getSource()) : [];
        if (usesAgy(sources) && kernel.connectionStatus === "connected") {
          askForReplies(kernel).catch(() => undefined); // a kernel gone or restarting: nothing to show
        }
      });
    };
    const attach = (kernel: Kernel.IKernelConnection | null | undefined): void => {
      if (!kernel || kernel === current) return;
      current = kernel;
      route(kernel);
      kernel.connectionStatusChanged.connect((_, status) => { if (status === "connected" && kernel === current) ask(kernel); });
      if (kernel.connectionStatus === "connected") ask(kernel);
    };
    attach(panel.sessionContext.session?.kernel);
    panel.sessionContext.kernelChanged.connect((_, change) => attach(change.newValue));
  };
  tracker.forEach(follow);
  tracker.widgetAdded.connect((_, panel) => follow(panel));
}
