// Tiny DOM helpers shared by the three views. Text always goes in through textContent, never HTML.

/** Create an element: h("button", { type: "button", className: "x" }, "Stop"). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "className" || key === "textContent" || key === "hidden" || key === "disabled") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  el.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** Give a view its stylesheet: a <style> inside the view works in the page and in shadow roots alike. */
export function addStyle(root, cssText) {
  root.append(h("style", {}, cssText));
}

const INTEGER = new Intl.NumberFormat("en-US");

/** 1234567 -> "1,234,567"; anything that is not a finite number -> "—". */
export function formatInteger(n) {
  return Number.isFinite(n) ? INTEGER.format(Math.round(n)) : "—";
}

/** Pretty JSON for display (strings are shown as they are). */
/**
 * Arguments and results as text (transcript.py _pretty, the same rules): strings as they are; an object
 * with a multi-line string value (code, output) as `key:` lines with that text indented below; else JSON.
 */
export function prettyJson(value) {
  if (value === undefined) return "";
  if (typeof value === "string") return value;
  const multiline = (v) => typeof v === "string" && v.includes("\n");
  try {
    if (value && typeof value === "object" && !Array.isArray(value) && Object.values(value).some(multiline)) {
      return Object.entries(value)
        .map(([key, v]) => (multiline(v)
          ? [`${key}:`, ...v.replace(/\n+$/, "").split("\n").map((line) => `  ${line}`)].join("\n")
          : `${key}: ${JSON.stringify(v)}`))
        .join("\n");
    }
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

/** Call fn(secondsLeft) now and every second until 0 or stop(); returns stop. */
export function countdown(seconds, fn) {
  const deadline = Date.now() + seconds * 1000;
  const tick = () => {
    const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    fn(left);
    if (left === 0) stop();
  };
  const timer = setInterval(tick, 1000);
  const stop = () => clearInterval(timer);
  tick();
  return stop;
}
