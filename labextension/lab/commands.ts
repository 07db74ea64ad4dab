// Commands that help the user act on replies, in the palette and the cells' context menu:
// New chat cell, Insert code from reply, Ask the agent about this cell, Stop agents. The cell toolbar
// (schema/commands.json) has Ask, and Insert code while the active cell holds a finished reply.
// They read the notebook model only; the kernel is reached only by Stop agents, through the comm target
// agy_jupyter.control that `%load_ext agy_jupyter` registers (agy_jupyter/notebook/lab_control.py).
// A comm, not an execute request: a running %%chat cell holds the execute queue, but comm messages are
// handled while it awaits (an async cell), which is exactly when Stop is needed.
import { JupyterFrontEnd } from "@jupyterlab/application";
import { ICommandPalette, Notification } from "@jupyterlab/apputils";
import { INotebookTracker, Notebook, NotebookActions, NotebookPanel } from "@jupyterlab/notebook";
import { askAboutCell, codeFromReply, errorText, TRANSCRIPT_MIME } from "../src/static_transcript.js";
import { askIcon, insertCodeIcon } from "./icons.js";
import { bundleText } from "./mime.js";

export const CONTROL_TARGET = "agy_jupyter.control";
const STOP_TIMEOUT_MS = 10_000;
const CATEGORY = "Agents";

export const COMMANDS = {
  newChat: "agy-jupyter:new-chat-cell",
  insertCode: "agy-jupyter:insert-code-from-reply",
  ask: "agy-jupyter:ask-about-cell",
  stop: "agy-jupyter:stop-agents",
};

type Output = { output_type?: string; data?: Record<string, unknown> };

/** The active cell's outputs as nbformat JSON ([] for a cell without outputs). */
function activeOutputs(notebook: Notebook): Output[] {
  const model = notebook.activeCell?.model as { outputs?: { toJSON(): unknown[] } } | undefined;
  return (model?.outputs?.toJSON() ?? []) as Output[];
}

/** The transcript outputs (finished replies) of the active cell. */
function replyOutputs(notebook: Notebook): Output[] {
  return activeOutputs(notebook).filter((o) => o.data && TRANSCRIPT_MIME in o.data);
}

/** A new cell below the active one holding `source`; `type` code or markdown. */
function insertBelow(notebook: Notebook, source: string, edit: boolean): void {
  NotebookActions.insertBelow(notebook);
  if (notebook.activeCell?.model.type !== "code") NotebookActions.changeCellType(notebook, "code");
  const cell = notebook.activeCell;
  if (!cell) return;
  cell.model.sharedModel.setSource(source);
  if (edit) {
    notebook.mode = "edit";
    const editor = cell.editor;
    if (editor) {
      const end = editor.getPositionAt(source.length);
      if (end) editor.setCursorPosition(end);
      editor.focus();
    }
  }
}

function kernelLanguage(panel: NotebookPanel): string {
  const info = panel.content.model?.getMetadata("language_info") as { name?: string } | undefined;
  return info?.name || "python";
}

/** Send {action: "stop"} on a new comm; resolves with the kernel's answer (how many replies it cancelled). */
export function stopAgents(panel: NotebookPanel): Promise<number> {
  const kernel = panel.sessionContext.session?.kernel;
  if (!kernel) return Promise.reject(new Error("This notebook has no running kernel."));
  return new Promise((resolve, reject) => {
    const comm = kernel.createComm(CONTROL_TARGET);
    const timer = setTimeout(() => reject(new Error("The kernel did not answer (is it busy in a cell that does not await?).")), STOP_TIMEOUT_MS);
    comm.onMsg = (msg) => {
      clearTimeout(timer);
      const answer = msg.content.data as { stopped?: number; error?: string };
      if (answer.error) reject(new Error(answer.error));
      else resolve(Number(answer.stopped ?? 0));
    };
    comm.onClose = () => {
      clearTimeout(timer);
      reject(new Error("agy_jupyter is not loaded in this kernel (run %load_ext agy_jupyter)."));
    };
    comm.open({ action: "stop" });
  });
}

export function addCommands(app: JupyterFrontEnd, tracker: INotebookTracker, palette: ICommandPalette | null): void {
  const current = (): NotebookPanel | null => tracker.currentWidget;
  const enabled = (): boolean => current() !== null && current() === app.shell.currentWidget;
  const { commands } = app;

  commands.addCommand(COMMANDS.newChat, {
    label: "New Chat Cell",
    caption: "Insert a %%chat cell below the selected cell",
    isEnabled: enabled,
    execute: () => {
      const panel = current();
      if (panel) insertBelow(panel.content, "%%chat\n", true);
    },
  });

  commands.addCommand(COMMANDS.insertCode, {
    label: "Insert Code from Reply",
    caption: "Put the code blocks of the selected cell's agent reply into a new code cell below",
    icon: insertCodeIcon,
    isEnabled: enabled,
    isVisible: () => { const panel = current(); return !!panel && replyOutputs(panel.content).length > 0; },
    execute: () => {
      const panel = current();
      if (!panel) return;
      const replies = replyOutputs(panel.content);
      if (!replies.length) {
        Notification.warning("The selected cell has no finished agent reply.", { autoClose: 5000 });
        return;
      }
      const code = replies.flatMap((o) => codeFromReply(bundleText(o.data?.["text/html"])));
      if (!code.length) {
        Notification.warning("The reply in the selected cell has no code blocks.", { autoClose: 5000 });
        return;
      }
      insertBelow(panel.content, code.join("\n\n"), false);
    },
  });

  commands.addCommand(COMMANDS.ask, {
    label: "Ask the Agent about This Cell",
    caption: "Insert a %%chat cell below that quotes the selected cell's source and its error",
    icon: askIcon,
    isEnabled: enabled,
    execute: () => {
      const panel = current();
      const cell = panel?.content.activeCell;
      if (!panel || !cell) return;
      const prompt = askAboutCell(cell.model.sharedModel.getSource(), errorText(activeOutputs(panel.content)),
        cell.model.type === "code" ? kernelLanguage(panel) : "markdown");
      insertBelow(panel.content, prompt, true);
    },
  });

  commands.addCommand(COMMANDS.stop, {
    label: "Stop Agents",
    caption: "Cancel every agent reply running in this notebook's kernel",
    isEnabled: () => enabled() && !!current()?.sessionContext.session?.kernel,
    execute: async () => {
      const panel = current();
      if (!panel) return;
      try {
        const stopped = await stopAgents(panel);
        Notification.info(`Stopped ${stopped} running ${stopped === 1 ? "reply" : "replies"}.`, { autoClose: 3000 });
        return stopped;
      } catch (error) {
        Notification.error(String((error as Error).message ?? error), { autoClose: 8000 });
        return -1;
      }
    },
  });

  // Insert code shows only for a cell with a reply: say so again when another cell becomes the active one.
  tracker.activeCellChanged.connect(() => commands.notifyCommandChanged(COMMANDS.insertCode));

  // The cells' context menu: the four together at the top, set apart by a separator.
  const selector = ".jp-Notebook .jp-Cell";
  Object.values(COMMANDS).forEach((command, i) => {
    palette?.addItem({ command, category: CATEGORY });
    app.contextMenu.addItem({ command, selector, rank: i / 10 });
  });
  app.contextMenu.addItem({ type: "separator", selector, rank: 0.5 });
}
