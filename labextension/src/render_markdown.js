// Markdown -> sanitized HTML (marked + highlight.js + DOMPurify), and MarkdownBlock, which renders a
// growing text incrementally so a long streamed reply costs O(new text) per frame, not O(whole reply).
import { Marked } from "marked";
import DOMPurify from "dompurify";
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import markdown from "highlight.js/lib/languages/markdown";
import python from "highlight.js/lib/languages/python";
import r from "highlight.js/lib/languages/r";
import shell from "highlight.js/lib/languages/shell";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import yaml from "highlight.js/lib/languages/yaml";

const LANGUAGES = { bash, javascript, json, markdown, python, r, shell, sql, typescript, yaml };
for (const [name, language] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, language);

// An allowlist: only the elements and attributes marked produces for Markdown. Raw HTML never gets
// here as HTML (the html renderer escapes it); this is the second wall. No SVG / MathML, no style, no
// form controls, dialogs, <base> or <meta>: a reply must not be able to draw its own "Approve" or
// "Stop" button next to the real ones, restyle the page, or run anything.
const ALLOWED_TAGS = ["a", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
  "i", "img", "li", "ol", "p", "pre", "s", "span", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul"];
const ALLOWED_ATTR = ["href", "title", "alt", "src", "class", "start", "align"];
const SANITIZE_CONFIG = { ALLOWED_TAGS, ALLOWED_ATTR, ALLOW_DATA_ATTR: false, ALLOW_ARIA_ATTR: false };
// Links: http(s), mailto and #anchors only (anything else loses its href). Images load only from data:
// URLs of raster formats, which the agent produced itself; a remote image would be fetched by the page
// on its own, the standard exfiltration channel of prompt injection, so it becomes a link instead.
const SAFE_HREF = /^(?:https?:|mailto:|#)/i;
const SAFE_IMAGE_SRC = /^data:image\/(?:png|jpeg|gif|webp)[;,]/i;

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (s) => s.replace(/[&<>"']/g, (c) => ESCAPES[c]);

const marked = new Marked({
  gfm: true,
  renderer: {
    code({ text, lang }) {
      const language = (lang || "").trim().split(/\s+/)[0].toLowerCase();
      if (language && hljs.getLanguage(language)) {
        const html = hljs.highlight(text, { language, ignoreIllegals: true }).value;
        return `<pre><code class="hljs language-${escapeHtml(language)}">${html}</code></pre>\n`;
      }
      return `<pre><code class="hljs">${escapeHtml(text)}</code></pre>\n`;
    },
    html({ text }) {
      // Raw HTML in a reply is shown as text, as in the saved static copy (and no broken <img> loads).
      return escapeHtml(text);
    },
    link({ href, tokens }) {
      // A link that may not keep its href is shown as its text, not as a dead link (the sanitizer
      // below drops such an href too: this only decides how it looks).
      if (!SAFE_HREF.test(href)) return this.parser.parseInline(tokens);
      return false; // marked's own rendering
    },
    image({ href, title, text, tokens }) {
      const alt = tokens ? this.parser.parseInline(tokens, this.parser.textRenderer) : text;
      const titled = title ? ` title="${escapeHtml(title)}"` : "";
      if (SAFE_IMAGE_SRC.test(href)) return `<img src="${escapeHtml(href)}" alt="${escapeHtml(alt)}"${titled}>`;
      // Not loaded: a link the user can follow, labelled as the static copy labels it.
      const label = escapeHtml(alt ? `[image: ${alt}]` : "[image]");
      return `<a href="${escapeHtml(href)}" class="agy-image-link"${titled}>${label}</a>`;
    },
    checkbox({ checked }) {
      return checked ? "\u2611 " : "\u2610 "; // task lists as text, since <input> is not allowed
    },
  },
});

let purifier = null;

/** A DOMPurify instance of our own (bound to the page's window on first use) with our hooks. */
function getPurifier() {
  if (purifier) return purifier;
  purifier = DOMPurify(globalThis.window);
  purifier.addHook("uponSanitizeAttribute", (node, data) => {
    const name = data.attrName;
    if (/^on/i.test(name)) data.keepAttr = false; // every event handler attribute
    if (name === "href" && !SAFE_HREF.test(data.attrValue)) data.keepAttr = false;
    if (name === "src" && !(node.nodeName === "IMG" && SAFE_IMAGE_SRC.test(data.attrValue))) data.keepAttr = false;
  });
  purifier.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName === "A" && node.hasAttribute("href")) {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer");
    }
  });
  return purifier;
}

/** HTML (from anywhere: marked, a saved static copy) -> an HTML string that is safe to assign to innerHTML. */
export function sanitizeHtml(html) {
  return getPurifier().sanitize(String(html), SANITIZE_CONFIG);
}

/** Render Markdown to an HTML string that is safe to assign to innerHTML. */
export function renderMarkdown(text) {
  return sanitizeHtml(marked.parse(text));
}

const FENCE = /^ {0,3}(`{3,}|~{3,})/;

/**
 * Where the text after `from` can be cut so that everything before the cut is finished Markdown:
 * the start of the last complete line that opens a new top-level block after a blank line, outside
 * fenced code. Returns `from` when there is no such place.
 */
export function lastSafeSplit(text, from = 0) {
  let split = from;
  let fence = null; // the open fence's marker, e.g. "```"
  let previousBlank = false;
  let pos = from;
  for (let nl = text.indexOf("\n", pos); nl !== -1; nl = text.indexOf("\n", pos)) {
    const line = text.slice(pos, nl);
    const marker = FENCE.exec(line)?.[1];
    if (fence) {
      const closes = marker && marker[0] === fence[0] && marker.length >= fence.length && line.trim() === marker;
      if (closes) fence = null;
      previousBlank = false;
    } else {
      if (previousBlank && /^\S/.test(line)) split = pos;
      if (marker) fence = marker;
      previousBlank = !marker && line.trim() === "";
    }
    pos = nl + 1;
  }
  return split;
}

/**
 * A Markdown text that only grows. append() is cheap; render() (call it at most once per frame)
 * renders finished blocks once into their own element and re-renders only the unfinished tail.
 */
export class MarkdownBlock {
  constructor(el) {
    this.el = el;
    this.text = "";
    this.done = 0; // text[0:done] is rendered for good
    this.tail = document.createElement("div");
    this.el.append(this.tail);
  }

  append(delta) {
    this.text += delta;
  }

  render() {
    const split = lastSafeSplit(this.text, this.done);
    if (split > this.done) {
      const finished = document.createElement("div");
      finished.innerHTML = renderMarkdown(this.text.slice(this.done, split));
      this.el.insertBefore(finished, this.tail);
      this.done = split;
    }
    this.tail.innerHTML = renderMarkdown(this.text.slice(this.done));
  }
}
