// Highlighting of agy_jupyter's magics in notebook editors (CodeMirror 6):
// - a cell whose first line starts with `%%chat` is parsed as Markdown (the cell's body is a prompt), its
//   first line as a magic (a node AgyMagic, styled as meta); the editor's content says data-language="markdown";
// - a line starting with `%agent` (or `%%chat`) is marked as a magic: the magic word in the meta colour,
//   its arguments as plain text rather than as Python operators and names;
// - tokens also get stable `tok-*` classes (classHighlighter), so tests and user CSS can address them.
// JupyterLab picks one language per editor from the kernel's mime type; the `language` facet takes its
// first value, so the Markdown language at the highest precedence, present only while the first line is
// `%%chat`, switches the parser, and switches it back when the line changes.
import { Language, syntaxHighlighting } from "@codemirror/language";
import { Compartment, EditorState, Extension, Prec, RangeSetBuilder, Text } from "@codemirror/state";
import { Decoration, DecorationSet, EditorView, ViewPlugin, ViewUpdate } from "@codemirror/view";
import { classHighlighter, tags } from "@lezer/highlight";

const CHAT = /^%%chat\b/;
const MAGIC = /^(\s*)(%%chat|%agent)\b(.*)$/;
const magicMark = Decoration.mark({ class: "cm-agy-magic" });
const argsMark = Decoration.mark({ class: "cm-agy-magic-args" });

export const isChatCell = (doc: Text): boolean => CHAT.test(doc.line(1).text);
export const isChatSource = (source: string): boolean => CHAT.test(source);

/** The Markdown parser's shape that matters here (@lezer/markdown's MarkdownParser.configure). */
interface MarkdownParserLike {
  configure(spec: unknown): Language["parser"];
}

/** A Markdown language whose parser reads a first line starting with `%%` as one AgyMagic node. */
export function chatLanguage(markdown: Language): Language {
  const magicLine = {
    defineNodes: [{ name: "AgyMagic", style: tags.meta }],
    parseBlock: [{
      name: "AgyMagic",
      before: "SetextHeading",
      parse(cx: any, line: any): boolean {
        if (cx.lineStart !== 0 || !line.text.startsWith("%%")) return false;
        cx.addElement(cx.elt("AgyMagic", cx.lineStart, cx.lineStart + line.text.length));
        cx.nextLine();
        return true;
      },
    }],
  };
  const parser = (markdown.parser as unknown as MarkdownParserLike).configure(magicLine);
  return new Language(markdown.data, parser, [], "markdown");
}

function magicDecorations(view: EditorView): DecorationSet {
  const builder = new RangeSetBuilder<Decoration>();
  for (const { from, to } of view.visibleRanges) {
    for (let pos = from; pos <= to;) {
      const line = view.state.doc.lineAt(pos);
      const match = MAGIC.exec(line.text);
      if (match && (match[2] !== "%%chat" || line.number === 1)) {
        const start = line.from + match[1].length;
        const end = start + match[2].length;
        builder.add(start, end, magicMark);
        if (line.to > end) builder.add(end, line.to, argsMark);
      }
      pos = line.to + 1;
    }
  }
  return builder.finish();
}

const magicLines = ViewPlugin.fromClass(
  class {
    decorations: DecorationSet;
    constructor(view: EditorView) {
      this.decorations = magicDecorations(view);
    }
    update(update: ViewUpdate) {
      if (update.docChanged || update.viewportChanged) this.decorations = magicDecorations(update.view);
    }
  },
  { decorations: (plugin) => plugin.decorations },
);

/**
 * The editor extension: Markdown in %%chat cells (when a Markdown language is given), magic lines, tok-* classes.
 * `chatAtStart`: whether the editor's initial text is a %%chat cell.
 */
export function agyHighlighting(chat: Language | null, chatAtStart: boolean): Extension {
  const extensions: Extension[] = [magicLines, syntaxHighlighting(classHighlighter)];
  if (!chat) return extensions;
  // A compartment, switched when the first line starts or stops being `%%chat`. (A facet provider that is
  // sometimes empty does not do: the language facet's state field then exists in editors with no language.)
  const compartment = new Compartment();
  const content = (isChat: boolean) => (isChat ? Prec.highest(chat.extension) : []);
  return [
    compartment.of(content(chatAtStart)),
    EditorState.transactionExtender.of((tr) => {
      if (!tr.docChanged) return null;
      const now = isChatCell(tr.newDoc);
      return now === isChatCell(tr.startState.doc) ? null : { effects: compartment.reconfigure(content(now)) };
    }),
    ...extensions,
  ];
}
