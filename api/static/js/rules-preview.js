// The rules card's preview: POST /api/rules/preview with the draft set on screen, poll its id, show what would
// change (tier moves, top movers, the new top 25) before anything is saved.
import { api, h, integer, signed, tierBadge } from "./util.js";

const POLL_MS = 500;
const TIERS = ["cold", "warm", "hot", "qualified"];

/** Run a preview of `rules` and resolve with its result; `progress(done, total)` as buckets are read. */
export async function previewRules(rules, headers, progress = () => {}) {
  const started = await api("/api/rules/preview", {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify({ rules }),
  });
  for (;;) {
    const state = await api(`/api/rules/preview/${encodeURIComponent(started.id)}`, { headers });
    if (state.state === "succeeded") return state.result;
    if (state.state === "failed") throw new Error(`preview failed: ${state.error}`);
    progress(state.buckets_done, state.buckets_total);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function leadLine(lead) {
  return h(
    "li",
    {},
    h("span", { class: "lead-key" }, lead.name || lead.email || lead.lead_key),
    " ",
    h("span", { class: "muted" }, `${lead.score_before ?? "–"} → ${lead.score_after}`),
    " ",
    h("span", { class: lead.change > 0 ? "plus" : lead.change < 0 ? "minus" : "muted" }, signed(lead.change)),
  );
}

/** The result as a block for the rules card. */
export function previewBlock(result) {
  const sources = Object.keys(result.matrix);
  const matrix = h(
    "table",
    { class: "table matrix" },
    h("thead", {}, h("tr", {}, h("th", {}, "now ↓ / draft →"), ...TIERS.map((t) => h("th", { class: "num" }, t)))),
    h(
      "tbody",
      {},
      ...sources.map((from) =>
        h(
          "tr",
          {},
          h("th", {}, from === "unscored" ? "unscored" : tierBadge(from)),
          ...TIERS.map((to) => {
            const n = result.matrix[from][to];
            return h("td", { class: `num ${n && from !== to ? "moved" : ""}` }, n ? integer.format(n) : "·");
          }),
        ),
      ),
    ),
  );
  const counts = TIERS.map((t) => `${t} ${integer.format(result.tiers_before[t] ?? 0)} → ${integer.format(result.tiers_after[t])}`);
  return h(
    "div",
    { class: "preview" },
    h(
      "p",
      {},
      h("strong", {}, `${integer.format(result.tier_changes)} of ${integer.format(result.leads)} leads change tier`),
      h("span", { class: "muted" }, ` · scores as of ${result.as_of.slice(0, 16).replace("T", " ")} UTC`),
    ),
    matrix,
    h("p", { class: "muted" }, counts.join(" · ")),
    h(
      "div",
      { class: "movers" },
      h("div", {}, h("h4", {}, "Top movers up"), h("ol", {}, ...result.top_movers_up.map(leadLine))),
      h("div", {}, h("h4", {}, "Top movers down"), h("ol", {}, ...result.top_movers_down.map(leadLine))),
    ),
    h("details", {}, h("summary", {}, "The new top 25"), h("ol", {}, ...result.top.map(leadLine))),
  );
}
