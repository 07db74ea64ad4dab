// One polite live region for the whole page (role="status", visually hidden) through which the views tell
// screen readers what a reply is doing. It lives on document.body, not in a view, because a finished
// reply's view is replaced by its static copy at once: a region inside it would vanish with the "done"
// it was about to read out. It is created when the first StreamView renders, so it is in the
// accessibility tree before its first change (a region created with its text is not announced).
import { h } from "./dom.js";

export const ANNOUNCER_ID = "agy-announcer";
// visually hidden, still read: the usual sr-only rules (the text duplicates the visible status line)
const SR_ONLY = "position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap";

/** The page's live region (made on first use). */
export function announcer() {
  let region = document.getElementById(ANNOUNCER_ID);
  if (!region) {
    region = h("div", { id: ANNOUNCER_ID, className: "agy-sr-only", role: "status", "aria-live": "polite", "aria-atomic": "true" });
    region.style.cssText = SR_ONLY;
    document.body.append(region);
  }
  return region;
}

let repeat = null;

/** Have screen readers read `text` (politely). The same text twice is read twice: it is cleared first. */
export function announce(text) {
  const region = announcer();
  clearTimeout(repeat);
  if (region.textContent !== text) {
    region.textContent = text;
    return;
  }
  region.textContent = "";
  repeat = setTimeout(() => (region.textContent = text), 100);
}
