// AgyAssets: the Markdown renderer of the StreamViews (marked + highlight.js + DOMPurify, ~150 KB),
// shipped once per kernel session instead of once per StreamView. The widget is never displayed.
// It publishes { api, renderMarkdown, MarkdownBlock, lastSafeSplit, css } on globalThis.__agyAssets
// (see assets_channel.js) when the module is evaluated and again in initialize(), which anywidget
// calls once per model as soon as the model exists in the front end (no view needed).
// No traits, no messages.
import { ASSETS_API, assetsChannel } from "./assets_channel.js";
import { MarkdownBlock, lastSafeSplit, renderMarkdown } from "./render_markdown.js";
import highlightCss from "./highlight.css";

export const assets = Object.freeze({
  api: ASSETS_API,
  renderMarkdown,
  MarkdownBlock,
  lastSafeSplit,
  css: highlightCss, // the code colours, for the views to add next to their own styles
});

export function publish() {
  assetsChannel().resolve(assets);
}

publish(); // in case a front end evaluates the module without calling initialize

export default {
  initialize() {
    publish(); // again: the channel may have been replaced since the module was evaluated
  },
  render() {}, // nothing to show
};
