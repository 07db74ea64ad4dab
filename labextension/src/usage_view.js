// UsageView: token counts per scope, estimated cost, and how full the context window is.
// Trait: data = {model, rows: [{scope, prompt, output, thinking, cached, cost}],
//   context: {used, limit, percent}, currency, note}; the view re-renders on change:data.
import { addStyle, formatInteger, h } from "./dom.js";
import baseCss from "./base.css";
import usageCss from "./usage_view.css";

const COLUMNS = [
  ["prompt", "Prompt"],
  ["output", "Output"],
  ["thinking", "Thinking"],
  ["cached", "Cached"],
];

/** 0.0012 -> "$0.0012", 12.5 -> "$12.50", null -> "—" (four decimals below one unit of currency). */
export function formatCost(cost, currency = "USD") {
  if (cost === null || cost === undefined || !Number.isFinite(cost)) return "—";
  const digits = Math.abs(cost) < 1 ? 4 : 2;
  const options = { minimumFractionDigits: digits, maximumFractionDigits: digits };
  try {
    return new Intl.NumberFormat("en-US", { style: "currency", currency, ...options }).format(cost);
  } catch {
    return `${new Intl.NumberFormat("en-US", options).format(cost)} ${currency}`;
  }
}

function contextBar({ used, limit, percent } = {}) {
  if (!Number.isFinite(used)) return null;
  if (!Number.isFinite(percent) && Number.isFinite(limit) && limit > 0) percent = (100 * used) / limit;
  const label = Number.isFinite(limit)
    ? `Context: ${formatInteger(used)} / ${formatInteger(limit)} tokens`
    : `Context: ${formatInteger(used)} tokens`;
  if (!Number.isFinite(percent)) return h("div", { className: "agy-context" }, h("span", {}, label));
  const shown = Math.min(100, Math.max(0, percent));
  const fill = h("div", { className: "agy-context-fill" });
  fill.style.width = `${shown}%`;
  const bar = h(
    "div",
    { className: "agy-context-bar", role: "progressbar", "aria-label": "Context window used", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": shown.toFixed(1) },
    fill,
  );
  const level = percent >= 90 ? "high" : percent >= 70 ? "medium" : "low";
  return h("div", { className: "agy-context", "data-level": level }, bar, h("span", {}, `${label} (${percent.toFixed(1)}%)`));
}

function usageTable(rows, currency) {
  // the corner cell heads nothing (the rows' own <th> name them): a <td>, not an empty header (axe: empty-table-header)
  const header = h("tr", {}, h("td"), ...COLUMNS.map(([, title]) => h("th", { scope: "col" }, title)), h("th", { scope: "col" }, "Cost"));
  const body = rows.map((row) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, String(row.scope ?? "")),
      ...COLUMNS.map(([key]) => h("td", {}, formatInteger(row[key]))),
      h("td", {}, formatCost(row.cost, currency)),
    ),
  );
  return h("table", { className: "agy-usage-table" }, h("thead", {}, header), h("tbody", {}, ...body));
}

function render({ model, el }) {
  const content = h("div");
  const root = h("div", { className: "agy-widget agy-usage" }, content);
  addStyle(root, baseCss + usageCss);
  el.append(root);

  function update() {
    const data = model.get("data") || {};
    const currency = data.currency || "USD";
    content.replaceChildren(
      h("div", { className: "agy-header" }, "Usage", data.model ? h("span", { className: "agy-model" }, data.model) : null),
      usageTable(Array.isArray(data.rows) ? data.rows : [], currency),
      contextBar(data.context),
      data.note ? h("div", { className: "agy-note" }, String(data.note)) : null,
    );
  }

  update();
  model.on("change:data", update);
  return () => model.off("change:data", update);
}

export default { render };
