// Test helpers: a jsdom page installed as the globals the views use, a fake anywidget model,
// and loading a built bundle the way anywidget does (from a string, not from a file path).
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>", { pretendToBeVisual: true });
for (const name of ["window", "document", "Node", "HTMLElement", "requestAnimationFrame", "cancelAnimationFrame"]) {
  globalThis[name] = name === "window" ? dom.window : dom.window[name];
}
// jsdom's rAF callbacks are bound to its window; keep them callable unbound.
globalThis.requestAnimationFrame = dom.window.requestAnimationFrame.bind(dom.window);
globalThis.cancelAnimationFrame = dom.window.cancelAnimationFrame.bind(dom.window);

const STATIC_DIR = new URL("../../agy_jupyter/notebook/static/", import.meta.url);

/** Import a built bundle from its text, as anywidget does with `_esm` (so it must be self-contained). */
export async function loadBundle(name) {
  const code = readFileSync(new URL(name, STATIC_DIR), "utf8");
  const module = await import(`data:text/javascript;base64,${Buffer.from(code).toString("base64")}`);
  return module.default;
}

/** The subset of anywidget's model API the views use, recording what they send. */
export function fakeModel(traits = {}) {
  const state = { ...traits };
  const listeners = new Map();
  return {
    sent: [],
    get: (name) => state[name],
    send(content) {
      this.sent.push(content);
    },
    on(event, cb) {
      if (!listeners.has(event)) listeners.set(event, new Set());
      listeners.get(event).add(cb);
    },
    off(event, cb) {
      listeners.get(event)?.delete(cb);
    },
    listenerCount: () => [...listeners.values()].reduce((n, set) => n + set.size, 0),
    /** Set a trait as the kernel would, firing change:name. */
    set(name, value) {
      state[name] = value;
      for (const cb of listeners.get(`change:${name}`) ?? []) cb();
    },
    /** Deliver a custom message from the kernel. */
    receive(msg) {
      for (const cb of listeners.get("msg:custom") ?? []) cb(msg, []);
    },
  };
}

/** Render a view into a fresh element attached to the page. */
export async function renderView(view, model) {
  const el = document.createElement("div");
  document.body.append(el);
  const cleanup = await view.render({ model, el });
  return { el, cleanup };
}

/** The accessible name of a control, for the cases the views use (aria-label, else its <label>s, else its text). */
export function accessibleName(el) {
  const label = el.getAttribute("aria-label");
  if (label !== null) return label.trim();
  if (el.labels?.length) return [...el.labels].map((l) => l.textContent).join(" ").trim();
  return el.textContent.trim();
}

export const button = (el, name) =>
  [...el.querySelectorAll("button")].find((b) => accessibleName(b) === name) ?? null;

export const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));


/** Elements that would run something or carry an event handler / script URL (empty when safe). */
export function activeContent(root) {
  return [...root.querySelectorAll("*")].filter((node) =>
    ["SCRIPT", "IFRAME", "OBJECT", "EMBED", "FORM", "STYLE", "SVG"].includes(node.tagName.toUpperCase()) ||
    [...node.attributes].some((a) => /^on/i.test(a.name) || a.name === "style" ||
      (/^(href|src|action)$/i.test(a.name) && /^\s*javascript:/i.test(a.value))));
}
