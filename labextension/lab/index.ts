// agy_jupyter's JupyterLab extension: magic highlighting in notebook editors and the reply commands.
// The transcript renderer is the mime extension (mime.ts). The anywidget views work without any of this.
import { JupyterFrontEnd, JupyterFrontEndPlugin } from "@jupyterlab/application";
import { ICommandPalette } from "@jupyterlab/apputils";
import { EditorExtensionRegistry, IEditorExtensionRegistry, IEditorLanguageRegistry } from "@jupyterlab/codemirror";
import { INotebookTracker } from "@jupyterlab/notebook";
import { IStatusBar } from "@jupyterlab/statusbar";
import { addCommands } from "./commands.js";
import { agyHighlighting, chatLanguage, isChatSource } from "./highlight.js";
import { addReattach } from "./reattach.js";
import { addStatusItem } from "./status.js";

const highlighting: JupyterFrontEndPlugin<void> = {
  id: "agy-jupyter:highlighting",
  description: "Highlights %%chat cells as Markdown and %agent lines as magics.",
  autoStart: true,
  requires: [IEditorExtensionRegistry, IEditorLanguageRegistry],
  activate: async (_app: JupyterFrontEnd, extensions: IEditorExtensionRegistry, languages: IEditorLanguageRegistry) => {
    let markdown = null;
    try {
      markdown = (await languages.getLanguage("markdown"))?.support?.language ?? null;
    } catch (error) {
      console.warn("agy-jupyter: no Markdown language for %%chat cells", error);
    }
    const chat = markdown ? chatLanguage(markdown) : null;
    extensions.addExtension({
      name: "agy-jupyter:highlighting",
      factory: ({ model }) =>
        EditorExtensionRegistry.createImmutableExtension(agyHighlighting(chat, isChatSource(model.sharedModel.getSource()))),
    });
  },
};

const commands: JupyterFrontEndPlugin<void> = {
  id: "agy-jupyter:commands",
  description: "Commands to start a chat, use a reply's code, ask about a cell and stop agents.",
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker, palette: ICommandPalette | null) => {
    addCommands(app, tracker, palette);
  },
};

const status: JupyterFrontEndPlugin<void> = {
  id: "agy-jupyter:status",
  description: "A status-bar item: agents streaming, approvals waiting, session tokens and estimated cost.",
  autoStart: true,
  requires: [INotebookTracker, IStatusBar],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker, statusBar: IStatusBar) => {
    addStatusItem(app, tracker, statusBar);
  },
};

const reattach: JupyterFrontEndPlugin<void> = {
  id: "agy-jupyter:reattach",
  description: "After a page reload, replies still running (or just ended) come back into their cells.",
  autoStart: true,
  requires: [INotebookTracker],
  activate: (_app: JupyterFrontEnd, tracker: INotebookTracker) => {
    addReattach(tracker);
  },
};

export default [highlighting, commands, status, reattach];
