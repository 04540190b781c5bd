// LeadScore dashboard: plain JS over the JSON API and the /api/stream Server-Sent Events. No build step.
import {
  $, $$, api, decimal, h, integer, setMessage, signed, throttle, tierBadge, timeAgo, utcDateTime,
} from "./js/util.js";
import { forgetKeys, hasStoredKeys, KEYS_CHANGED } from "./js/access.js";
import { markSelectedLead, openLeadsPage, refreshLeadsPage, setupLeadsPage } from "./js/leads.js";
import { followStream } from "./js/stream.js";
import { drawCurve } from "./js/curve.js";
import { previewBlock, previewRules } from "./js/rules-preview.js";

const BOARD_SIZE = 25;
const STREAM_TOP = 100; // the stream's snapshot and ranks cover this many leads
const REFRESH_MS = 2000; // summary and charts follow score updates at most this often
const STATUS_POLL_MS = 5000;
const HISTORY_PAGE = 100;
const TOKEN_KEY = "leadscore.adminToken";

const TYPE_COLORS = {
  PAGE_VIEW: "#93a4c3",
  EMAIL_OPEN: "#6c8ef5",
  FORM_SUBMISSION: "#22a6b3",
  DEMO_REQUEST: "#f5a524",
  PURCHASE: "#10a36b",
  REFUND: "#e5484d",
};
const EXTRA_COLORS = ["#8e6cf0", "#d9649b", "#7a8b3a", "#c57b2a", "#4d9de0", "#a1887f", "#5c6bc0", "#26a69a"];

// ---------------------------------------------------------------- helpers

function adminHeaders() {
  const token = $("#admin-token").value.trim();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function typeColor(type, index = 0) {
  return TYPE_COLORS[type] || EXTRA_COLORS[index % EXTRA_COLORS.length];
}

// ---------------------------------------------------------------- live leaderboard

const board = {
  leads: new Map(), // lead_key -> the latest row for the top 100 (from the snapshot, then updates)
  deltas: new Map(), // lead_key -> score change not yet shown
  rows: new Map(), // lead_key -> <tr>
  fromSnapshot: false,
  renderQueued: false,
};

function compareLeads(a, b) {
  return b.score - a.score || (a.lead_key < b.lead_key ? -1 : a.lead_key > b.lead_key ? 1 : 0);
}

function queueBoardRender() {
  if (board.renderQueued) return;
  board.renderQueued = true;
  requestAnimationFrame(() => {
    board.renderQueued = false;
    renderBoard();
  });
}

function renderBoard() {
  const tbody = $("#leaderboard tbody");
  const sorted = [...board.leads.values()].sort(compareLeads);
  // Leads pushed out of the top 100 by others get no update of their own: forget them here.
  for (const lead of sorted.slice(STREAM_TOP)) board.leads.delete(lead.lead_key);
  const top = sorted.slice(0, BOARD_SIZE);
  const keep = new Set(top.map((lead) => lead.lead_key));
  for (const [key, row] of board.rows) {
    if (!keep.has(key)) {
      row.remove();
      board.rows.delete(key);
    }
  }
  top.forEach((lead, index) => {
    let row = board.rows.get(lead.lead_key);
    if (!row) {
      row = boardRow(lead.lead_key);
      board.rows.set(lead.lead_key, row);
    }
    fillBoardRow(row, lead, index + 1);
    if (board.deltas.has(lead.lead_key)) flashBoardRow(row, board.deltas.get(lead.lead_key));
    if (tbody.children[index] !== row) tbody.insertBefore(row, tbody.children[index] || null);
  });
  board.deltas.clear();
  $("#leaderboard-empty").hidden = top.length > 0;
  $("#leaderboard").hidden = top.length === 0;
}

function boardRow(leadKey) {
  return h(
    "tr",
    {
      tabindex: "0",
      dataset: { leadKey },
      onclick: () => openLead(leadKey),
      onkeydown: (event) => event.key === "Enter" && openLead(leadKey),
    },
    h("td", { class: "num rank" }),
    h("td", { class: "who", title: leadKey }, h("b"), h("small")),
    h("td", { class: "company" }),
    h("td", { class: "num" }, h("span", { class: "delta" }), h("span", { class: "score" })),
    h("td", {}, h("span", { class: "badge" })),
    h("td", { class: "num when" }),
  );
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** Updates the cells in place, so a score delta still fading out survives other rows moving. */
function fillBoardRow(row, lead, rank) {
  const [rankCell, whoCell, companyCell, , tierCell, whenCell] = row.cells;
  setText(rankCell, String(rank));
  setText($("b", whoCell), lead.name || lead.email || lead.lead_key);
  setText($("small", whoCell), lead.name ? lead.email || lead.lead_key : lead.email ? "" : "no email");
  setText(companyCell, lead.company || "");
  companyCell.title = lead.company || "";
  setText($(".score", row), integer.format(lead.score));
  const badge = $(".badge", tierCell);
  setText(badge, lead.tier);
  badge.className = `badge ${lead.tier}`;
  setText(whenCell, timeAgo(lead.last_event_at));
  whenCell.title = lead.last_event_at ? `${utcDateTime(lead.last_event_at)} UTC` : "";
  row.classList.toggle("selected", lead.lead_key === panel.leadKey);
}

/** A brief highlight, and the change of score when it is known (null for a lead new to the top 100). */
function flashBoardRow(row, delta) {
  const kind = delta > 0 ? "up" : delta < 0 ? "down" : "";
  $(".delta", row).replaceWith(h("span", { class: `delta ${kind}` }, delta ? signed(delta) : ""));
  row.classList.remove("flash");
  void row.offsetWidth; // restart the animation for a row that changes again
  row.classList.add("flash");
}

function onSnapshot(snapshot) {
  board.fromSnapshot = true;
  board.leads = new Map(snapshot.leads.map((lead) => [lead.lead_key, lead]));
  queueBoardRender();
  refreshSoon();
}

function onScoreUpdate(update) {
  const previous = board.leads.get(update.lead_key);
  if (update.rank === null) board.leads.delete(update.lead_key);
  else board.leads.set(update.lead_key, update);
  // A lead new to the top 100 flashes without a delta: its previous score is not known here.
  const delta = previous ? update.score - previous.score : null;
  const pending = board.deltas.get(update.lead_key);
  board.deltas.set(update.lead_key, delta === null || pending === null ? null : (pending || 0) + delta);
  queueBoardRender();
  refreshSoon();
  if (update.lead_key === panel.leadKey) reloadPanelSoon();
}

function setLive(state, text) {
  const pill = $("#live-pill");
  pill.className = `pill ${state}`;
  $("span", pill).textContent = text;
}

function connectStream() {
  const handlers = {
    snapshot: (data) => onSnapshot(JSON.parse(data)),
    "score-update": (data) => onScoreUpdate(JSON.parse(data)),
  };
  followStream("/api/stream", handlers, (state) => setLive(state === "live" ? "live" : "down", state));
}

async function loadBoardOnce() {
  // The stream's snapshot is the source of truth; this only fills the table if the stream is slow to answer.
  const { leads } = await api("/api/leaderboard?limit=100");
  if (board.fromSnapshot) return;
  board.leads = new Map(leads.map((lead) => [lead.lead_key, lead]));
  queueBoardRender();
}

// ---------------------------------------------------------------- summary and pipeline status

async function loadSummary() {
  const summary = await api("/api/analytics/summary");
  for (const node of $$("[data-stat]")) node.textContent = integer.format(summary[node.dataset.stat]);
  for (const node of $$("[data-tier]")) node.textContent = integer.format(summary.tiers[node.dataset.tier] || 0);
  const shown = Math.min(BOARD_SIZE, summary.leads);
  $("#leaderboard-note").textContent = `top ${shown} of ${integer.format(summary.leads)} · live`;
}

let shownRulesVersion = null;
let seenScoredThrough = null;

async function loadStatus() {
  const status = await api("/api/pipeline/status");
  const pill = $("#pipeline-pill");
  const rescoring = status.scored_rules_version < status.rules_version;
  let text = `lag ${integer.format(status.lag)} · rules v${status.rules_version}`;
  if (rescoring) text = `rescoring for rules v${status.rules_version} · lag ${integer.format(status.lag)}`;
  pill.textContent = text;
  pill.classList.toggle("behind", rescoring || status.lag > 0);
  pill.title = [
    `landed through #${status.landed_through}, scored through #${status.scored_through}`,
    `scores reflect rules v${status.scored_rules_version} (current v${status.rules_version})`,
    status.last_microbatch_at ? `last micro-batch ${utcDateTime(status.last_microbatch_at)} UTC` : "no micro-batch yet",
  ].join("\n");
  showQuarantine(status);
  // Progress that changed no score (duplicates, rejections) still changes the numbers.
  if (seenScoredThrough !== null && status.scored_through !== seenScoredThrough) refreshSoon();
  seenScoredThrough = status.scored_through;
  // Someone else changed the rules: show them, unless an edit is in progress here.
  if (shownRulesVersion !== null && status.rules_version !== shownRulesVersion && !$("#rules tbody tr.dirty")) {
    loadRules();
  }
}

function showQuarantine(status) {
  $("#quarantine").hidden = status.quarantined === 0;
  $("#quarantine summary").textContent = `${integer.format(status.quarantined)} quarantined`;
  $("#quarantine-list").replaceChildren(
    ...status.quarantined_latest.map((row) =>
      h("li", {}, h("b", {}, `#${row.seq} ${row.event_id}`), ` ${row.step}: ${row.reason}`),
    ),
  );
}

// ---------------------------------------------------------------- charts

let trendsChart = null;
let companiesChart = null;
let trendRange = "7d";

function setupCharts() {
  Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily;
  Chart.defaults.font.size = 11;
  Chart.defaults.color = "#6b7385";
  Chart.defaults.borderColor = "#eef0f3";
  trendsChart = new Chart($("#trends-chart"), {
    type: "bar",
    data: { labels: [], datasets: [] },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: { duration: 250 },
      interaction: { mode: "index", intersect: false },
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 10, boxHeight: 10, padding: 10 } },
        tooltip: { filter: (item) => item.parsed.y > 0 },
      },
      scales: {
        x: { stacked: true, grid: { display: false } },
        y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
      },
    },
  });
  companiesChart = new Chart($("#companies-chart"), {
    type: "bar",
    data: { labels: [], datasets: [] },
    options: {
      indexAxis: "y",
      responsive: true,
      maintainAspectRatio: false,
      animation: { duration: 250 },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            label: (item) => `${integer.format(item.parsed.x)} leads`,
            afterLabel: (item) => {
              const company = item.dataset.companies[item.dataIndex];
              return `average score ${decimal.format(company.average_score)}, total ${integer.format(company.total_score)}`;
            },
          },
        },
      },
      scales: {
        x: { beginAtZero: true, ticks: { precision: 0 } },
        y: { grid: { display: false } },
      },
    },
  });
}

function periodLabel(period, unit) {
  const date = new Date(`${period}T00:00:00Z`);
  const options = unit === "day" ? { month: "short", day: "numeric" } : { month: "short", year: "numeric" };
  return date.toLocaleDateString("en-US", { ...options, timeZone: "UTC" });
}

async function loadTrends() {
  const range = trendRange;
  const trends = await api(`/api/analytics/trends?range=${range}`);
  if (range !== trendRange) return; // the user switched again meanwhile
  const totals = {};
  for (const point of trends.points) {
    for (const [type, n] of Object.entries(point.by_type)) totals[type] = (totals[type] || 0) + n;
  }
  const types = Object.keys(totals).sort((a, b) => totals[b] - totals[a] || a.localeCompare(b));
  trendsChart.data.labels = trends.points.map((point) => periodLabel(point.period, trends.unit));
  trendsChart.data.datasets = types.map((type, index) => ({
    label: type,
    data: trends.points.map((point) => point.by_type[type] || 0),
    backgroundColor: typeColor(type, index),
    borderRadius: 2,
    maxBarThickness: 36,
  }));
  trendsChart.update();
}

async function loadCompanies() {
  const { companies } = await api("/api/analytics/companies?limit=10");
  companiesChart.data.labels = companies.map((c) => c.company);
  companiesChart.data.datasets = [
    {
      data: companies.map((c) => c.leads),
      companies,
      backgroundColor: "#6d66ea",
      borderRadius: 3,
      maxBarThickness: 14,
    },
  ];
  companiesChart.update();
}

function setupTrendRange() {
  for (const button of $$("#trend-range button")) {
    button.addEventListener("click", () => {
      trendRange = button.dataset.range;
      for (const other of $$("#trend-range button")) other.setAttribute("aria-pressed", String(other === button));
      loadTrends().catch(console.warn);
    });
  }
}

// ---------------------------------------------------------------- event types and conversion drivers

async function loadEventTypes() {
  const { event_types: types, conversion_drivers: drivers } = await api("/api/analytics/event-types");
  $("#event-types tbody").replaceChildren(
    ...types.map((t, index) =>
      h(
        "tr",
        {},
        h("td", {}, h("span", { class: "swatch", style: `background:${typeColor(t.event_type, index)}` }),
          h("span", { class: "type-tag" }, t.event_type)),
        h("td", { class: "num" }, integer.format(t.events)),
        h("td", { class: "num" }, integer.format(t.unique_leads)),
        h("td", { class: `num ${t.points < 0 ? "minus" : ""}` }, signed(t.points)),
      ),
    ),
  );
  if (!types.length) $("#event-types tbody").append(h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No events yet.")));
  const total = drivers.reduce((sum, d) => sum + d.conversions, 0);
  $("#drivers tbody").replaceChildren(
    ...drivers.map((d) =>
      h(
        "tr",
        {},
        h("td", {}, h("span", { class: "type-tag" }, d.event_type)),
        h("td", { style: "width:45%" }, h("div", { class: "bar" }, h("i", { style: `width:${(100 * d.conversions) / total}%` }))),
        h("td", { class: "num" }, `${integer.format(d.conversions)} (${Math.round((100 * d.conversions) / total)}%)`),
      ),
    ),
  );
  if (!drivers.length) $("#drivers tbody").append(h("tr", {}, h("td", { class: "muted" }, "No purchases yet.")));
}

// ---------------------------------------------------------------- refresh

async function refreshAll() {
  refreshLeadsPage();
  const results = await Promise.allSettled([loadSummary(), loadStatus(), loadTrends(), loadCompanies(), loadEventTypes()]);
  for (const result of results) if (result.status === "rejected") console.warn("refresh failed:", result.reason);
}

const refreshSoon = throttle(refreshAll, REFRESH_MS);

// ---------------------------------------------------------------- lead panel

const panel = { leadKey: null, offset: 0, detail: null };

function markSelected() {
  for (const [key, row] of board.rows) row.classList.toggle("selected", key === panel.leadKey);
  markSelectedLead();
}

async function openLead(leadKey) {
  panel.leadKey = leadKey;
  markSelected();
  $("#lead-panel").hidden = false;
  await renderPanel();
}

function closeLead() {
  panel.leadKey = null;
  $("#lead-panel").hidden = true;
  markSelected();
}

async function renderPanel() {
  const key = panel.leadKey;
  const path = `/api/leads/${encodeURIComponent(key)}`;
  let detail, history, curve;
  try {
    [detail, history, curve] = await Promise.all([
      api(path),
      api(`${path}/history?limit=${HISTORY_PAGE}`),
      api(`${path}/curve`),
    ]);
  } catch (error) {
    if (key !== panel.leadKey) return;
    $("#lead-name").textContent = key;
    $("#lead-sub").textContent = error.message;
    return;
  }
  if (key !== panel.leadKey) return; // another lead was opened meanwhile
  panel.detail = detail;
  panel.offset = history.history.length;

  $("#lead-name").textContent = detail.name || detail.email || detail.lead_key;
  const joinedFrom = detail.resolved_from ? `${detail.resolved_from} joined into ${detail.lead_key}` : null;
  $("#lead-sub").textContent = [detail.email || detail.lead_key, detail.company, joinedFrom].filter(Boolean).join(" · ");
  $("#lead-score").textContent = integer.format(detail.score);
  $("#lead-tier").replaceChildren(tierBadge(detail.tier));
  const facts = [
    ["Score at last event", integer.format(detail.score_at_last_event)],
    ["Events", integer.format(detail.events)],
    ["First event", `${utcDateTime(detail.first_event_at)} UTC`],
    ["Last event", `${utcDateTime(detail.last_event_at)} UTC`],
    ["As of", `${utcDateTime(detail.as_of)} UTC`],
  ];
  $("#lead-facts").replaceChildren(...facts.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));

  $("#lead-by-type tbody").replaceChildren(
    ...detail.points_by_event_type.map((t) =>
      h(
        "tr",
        {},
        h("td", {}, h("span", { class: "type-tag" }, t.event_type)),
        h("td", { class: "num" }, integer.format(t.events)),
        h("td", { class: `num ${t.points < 0 ? "minus" : t.points > 0 ? "plus" : ""}` }, signed(t.points)),
      ),
    ),
  );

  const rows = [];
  const sinceLast = detail.score - detail.score_at_last_event;
  if (sinceLast !== 0) {
    rows.push(
      h(
        "tr",
        { class: "now" },
        h("td", { class: "when" }, "now"),
        h("td", { class: "why" }, h("span", { class: "minus" }, `${signed(sinceLast)} decay since the last event (inactive)`)),
        h("td", { class: "num minus" }, signed(sinceLast)),
        h("td", { class: "num" }, integer.format(detail.score)),
      ),
    );
  }
  rows.push(...history.history.map(historyRow));
  $("#lead-history tbody").replaceChildren(...rows);
  drawCurve($("#lead-curve"), curve);
  $("#lead-curve-note").textContent = curve.truncated ? `the latest ${integer.format(curve.events)} events` : "";
  $("#lead-more").hidden = panel.offset >= history.total;
}

/** One history row, with the explanation of its change: points, decay before it, and clamping. */
function historyRow(row) {
  const parts = [];
  if (row.decay > 0) parts.push(h("span", { class: "minus" }, `-${row.decay} decay (inactive)`));
  const pointsClass = row.points > 0 ? "plus" : row.points < 0 ? "minus" : "muted";
  const noRule = row.note ? ` (${row.note})` : row.points === 0 ? " (no active rule)" : "";
  parts.push(h("span", { class: pointsClass }, `${row.points > 0 ? "+" : ""}${row.points} ${row.event_type}${noRule}`));
  const unclamped = row.points - row.decay;
  if (row.change < unclamped) parts.push(h("span", { class: "muted" }, `capped at ${row.score_after}`));
  if (row.change > unclamped) parts.push(h("span", { class: "muted" }, `floored at ${row.score_after}`));
  // Identity stitching (SPEC §3): the key an event came under, and the keys it joined into this lead.
  if (row.sent_as) parts.push(h("span", { class: "muted" }, `sent as ${row.sent_as}`));
  if (row.joins?.length) parts.push(h("span", { class: "plus" }, `joins ${row.joins.join(", ")}`));
  const changeClass = row.change > 0 ? "plus" : row.change < 0 ? "minus" : "";
  return h(
    "tr",
    { title: row.event_id },
    h("td", { class: "when" }, utcDateTime(row.event_time)),
    h("td", { class: "why" }, parts),
    h("td", { class: `num ${changeClass}` }, signed(row.change)),
    h("td", { class: "num" }, integer.format(row.score_after)),
  );
}

async function loadMoreHistory() {
  const key = panel.leadKey;
  const page = await api(`/api/leads/${encodeURIComponent(key)}/history?limit=${HISTORY_PAGE}&offset=${panel.offset}`);
  if (key !== panel.leadKey) return;
  $("#lead-history tbody").append(...page.history.map(historyRow));
  panel.offset += page.history.length;
  $("#lead-more").hidden = panel.offset >= page.total;
}

const reloadPanelSoon = throttle(() => panel.leadKey && renderPanel(), 1000);

function setupPanel() {
  $("#lead-close").addEventListener("click", closeLead);
  $("#lead-more").addEventListener("click", () => loadMoreHistory().catch(console.warn));
  document.addEventListener("keydown", (event) => event.key === "Escape" && closeLead());
}

// ---------------------------------------------------------------- rules

async function loadRules() {
  const { rules_version: version, rules } = await api("/api/rules");
  shownRulesVersion = version;
  $("#rules-version").textContent = `version ${version} · a change rescores every lead; preview it first`;
  // Edits not saved yet survive the reload (another rule was saved, or someone else changed one).
  const edits = new Map(
    $$("#rules tbody tr.dirty").map((row) => [row.dataset.eventType, [$("input[type=number]", row).value, $("input[type=checkbox]", row).checked]]),
  );
  $("#rules tbody").replaceChildren(...rules.map(ruleRow));
  for (const row of $$("#rules tbody tr")) {
    const edit = edits.get(row.dataset.eventType);
    if (!edit) continue;
    $("input[type=number]", row).value = edit[0];
    $("input[type=checkbox]", row).checked = edit[1];
    $("input[type=number]", row).dispatchEvent(new Event("input"));
  }
}

function ruleRow(rule) {
  const points = h("input", { type: "number", min: "-1000", max: "1000", step: "1", value: String(rule.points),
    "aria-label": `${rule.event_type} points` });
  const active = h("input", { type: "checkbox", checked: rule.active, "aria-label": `${rule.event_type} active` });
  // Text, not number: the row's one number input is its points. Empty: no daily limit.
  const limit = h("input", { type: "text", inputmode: "numeric", class: "limit", placeholder: "–",
    value: rule.max_per_day === null ? "" : String(rule.max_per_day), "aria-label": `${rule.event_type} max per day` });
  const save = h("button", { type: "button", disabled: true }, "Save");
  const remove = h("button", { type: "button", class: "danger", title: "Delete this rule" }, "Delete");
  const row = h(
    "tr",
    { dataset: { eventType: rule.event_type }, title: `updated ${utcDateTime(rule.updated_at)} UTC` },
    h("td", {}, h("span", { class: "type-tag" }, rule.event_type)),
    h("td", { class: "num" }, points),
    h("td", {}, active),
    h("td", { class: "num" }, limit),
    h("td", { class: "actions" }, save, remove),
  );
  const onEdit = () => {
    const dirty =
      Number(points.value) !== rule.points || active.checked !== rule.active || limit.value.trim() !== String(rule.max_per_day ?? "");
    row.classList.toggle("dirty", dirty);
    save.disabled = !dirty;
  };
  points.addEventListener("input", onEdit);
  limit.addEventListener("input", onEdit);
  active.addEventListener("change", onEdit);
  points.addEventListener("keydown", (event) => event.key === "Enter" && !save.disabled && save.click());
  save.addEventListener("click", () => saveRule(rule.event_type, points.value, active.checked, limit.value));
  remove.addEventListener("click", () => {
    if (confirm(`Delete the rule for ${rule.event_type}? Its events will score 0.`)) deleteRule(rule.event_type);
  });
  return row;
}

/** A daily limit as typed: "" is none; else a whole number of at least 1 (undefined when it is not). */
function parseLimit(text) {
  const trimmed = String(text).trim();
  if (trimmed === "") return null;
  const n = Number(trimmed);
  return Number.isInteger(n) && n >= 1 ? n : undefined;
}

/** The rule set on screen, unsaved edits included: what a preview shows the effect of. */
function draftRules() {
  return $$("#rules tbody tr").map((row) => ({
    event_type: row.dataset.eventType,
    points: Number($("input[type=number]", row).value),
    active: $("input[type=checkbox]", row).checked,
    max_per_day: parseLimit($("input.limit", row).value) ?? null,
  }));
}

async function previewDraft() {
  const message = $("#rules-message");
  if (!adminHeaders().Authorization) {
    setMessage(message, "Paste the admin token first to preview.", "error");
    return;
  }
  const button = $("#rules-preview-run");
  button.disabled = true;
  setMessage(message, "Previewing the rules on screen against every lead…");
  try {
    const result = await previewRules(draftRules(), adminHeaders(), (done, total) =>
      setMessage(message, `Previewing… ${done} of ${total} lead buckets read`),
    );
    $("#rules-preview").replaceChildren(previewBlock(result));
    setMessage(message, "Preview ready: nothing was saved.", "ok");
  } catch (error) {
    setMessage(message, error.message, "error");
  } finally {
    button.disabled = false;
  }
}

async function loadVersions() {
  const { versions } = await api("/api/rules/versions?limit=20");
  $("#rules-versions ol").replaceChildren(
    ...versions.map((v) =>
      h(
        "li",
        {},
        h("strong", {}, `v${v.version}`),
        ` ${utcDateTime(v.created_at)} UTC · ${v.kind}${v.restored_from ? ` of v${v.restored_from}` : ""}`,
        v.note ? h("span", { class: "muted" }, ` · “${v.note}”`) : null,
        h("span", { class: "muted" }, ` · ${v.change.map((c) => c.event_type).join(", ") || "no change"}`),
        h(
          "button",
          { type: "button", class: "ghost", onclick: () => restoreVersion(v.version) },
          "Restore",
        ),
      ),
    ),
  );
}

function restoreVersion(version) {
  if (!confirm(`Make rule version ${version} current again? Every lead is rescored.`)) return;
  return changeRules(
    () =>
      api(`/api/rules/versions/${version}/restore`, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...adminHeaders() },
        body: JSON.stringify({ note: noteText() }),
      }),
    (result) =>
      result.changed
        ? `Restored version ${version} as version ${result.version}. Rules v${result.rules_version}: rescoring every lead.`
        : `Version ${version} is the current set already.`,
  );
}

function noteText() {
  return $("#rules-note").value.trim() || null;
}

async function changeRules(request, done) {
  const message = $("#rules-message");
  if (!adminHeaders().Authorization) {
    setMessage(message, "Paste the admin token first (kept in .leadscore/admin_token; `make up` says where).", "error");
    $("#admin-token").focus();
    return false;
  }
  try {
    const result = await request();
    setMessage(message, done(result), "ok");
    $("#rules-note").value = "";
    $("#rules-preview").replaceChildren();
    await loadRules();
    if ($("#rules-versions").open) loadVersions().catch(console.warn);
    loadStatus().catch(console.warn);
    return true;
  } catch (error) {
    setMessage(message, error.message, "error");
    return false;
  }
}

function putRule(eventType, points, active, maxPerDay = null) {
  return api(`/api/rules/${encodeURIComponent(eventType)}`, {
    method: "PUT",
    headers: { "Content-Type": "application/json", ...adminHeaders() },
    body: JSON.stringify({ points, active, max_per_day: maxPerDay, note: noteText() }),
  });
}

function saveRule(eventType, pointsText, active, limitText) {
  const points = Number(pointsText);
  if (!Number.isInteger(points)) {
    setMessage($("#rules-message"), `${eventType}: points must be a whole number`, "error");
    return;
  }
  const maxPerDay = parseLimit(limitText);
  if (maxPerDay === undefined) {
    setMessage($("#rules-message"), `${eventType}: max per day must be empty or a whole number of at least 1`, "error");
    return;
  }
  return changeRules(
    () => putRule(eventType, points, active, maxPerDay),
    (result) =>
      result.changed
        ? `Saved ${eventType} (${signed(points)}${active ? "" : ", inactive"}). Rules v${result.rules_version}: rescoring every lead.`
        : `${eventType} already had these values.`,
  );
}

function deleteRule(eventType) {
  return changeRules(
    () => {
      const note = noteText();
      const query = note ? `?note=${encodeURIComponent(note)}` : "";
      return api(`/api/rules/${encodeURIComponent(eventType)}${query}`, { method: "DELETE", headers: adminHeaders() });
    },
    (result) => `Deleted ${eventType}. Rules v${result.rules_version}: rescoring every lead.`,
  );
}

async function addRule() {
  const type = $("#new-rule-type").value.trim().toUpperCase();
  if (!/^[A-Z][A-Z0-9_]{0,63}$/.test(type)) {
    setMessage($("#rules-message"), "Event type: a letter, then letters, digits or _ (at most 64).", "error");
    return;
  }
  const points = Number($("#new-rule-points").value);
  if (!Number.isInteger(points)) {
    setMessage($("#rules-message"), "Points must be a whole number.", "error");
    return;
  }
  const added = await changeRules(
    () => putRule(type, points, $("#new-rule-active").checked),
    (result) => `Added ${type} (${signed(points)}). Rules v${result.rules_version}: rescoring every lead.`,
  );
  if (added) $("#new-rule-type").value = "";
}

function setupRules() {
  const token = $("#admin-token");
  token.value = localStorage.getItem(TOKEN_KEY) || "";
  token.addEventListener("input", () => localStorage.setItem(TOKEN_KEY, token.value.trim()));
  $("#token-form").addEventListener("submit", (event) => event.preventDefault());
  $("#token-forget").addEventListener("click", () => {
    localStorage.removeItem(TOKEN_KEY);
    token.value = "";
  });
  $("#new-rule-add").addEventListener("click", addRule);
  $("#rules-preview-run").addEventListener("click", previewDraft);
  $("#rules-versions").addEventListener("toggle", () => $("#rules-versions").open && loadVersions().catch(console.warn));
  $("#new-rule-type").addEventListener("keydown", (event) => event.key === "Enter" && addRule());
}

// ---------------------------------------------------------------- CSV upload

function setupUpload() {
  const form = $("#upload-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = $("#upload-file").files[0];
    if (!file) return;
    const message = $("#upload-message");
    const button = $("button", form);
    button.disabled = true;
    setMessage(message, `Uploading ${file.name}…`);
    const body = new FormData();
    body.append("file", file);
    try {
      const result = await api("/api/events/upload", { method: "POST", body }, "ingest");
      const kind = result.rejected ? "error" : "ok";
      const rows = (n) => `${integer.format(n)} ${n === 1 ? "row" : "rows"}`;
      setMessage(message, `${file.name}: ${rows(result.accepted)} accepted, ${rows(result.rejected)} rejected.`, kind);
      renderUploadErrors(result.errors);
      refreshSoon();
    } catch (error) {
      setMessage(message, `${file.name}: ${error.message}`, "error");
      renderUploadErrors([]);
    } finally {
      button.disabled = false;
    }
  });
}

function renderUploadErrors(errors) {
  const table = $("#upload-errors");
  table.hidden = errors.length === 0;
  $("tbody", table).replaceChildren(
    ...errors.map((e) => h("tr", {}, h("td", { class: "num" }, e.line), h("td", {}, e.error))),
  );
}

// ---------------------------------------------------------------- pages

/** `#leads...` shows the Leads page, anything else the overview; the summary strip stays on both. */
function showPage() {
  const page = location.hash.startsWith("#leads") ? "leads" : "overview";
  $("#overview").hidden = page !== "overview";
  $("#leads-page").hidden = page !== "leads";
  for (const tab of $$("[data-page]")) {
    if (tab.dataset.page === page) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  if (page === "leads") openLeadsPage();
}

function setupPages() {
  $('[data-page="overview"]').href = "#overview";
  setupLeadsPage({ openLead, selectedLead: () => panel.leadKey });
  window.addEventListener("hashchange", showPage);
  showPage();
}

// ---------------------------------------------------------------- start

async function loadConfig() {
  const config = await api("/api/config");
  for (const link of $$("[data-dagster]")) link.href = config.dagster_url + link.dataset.dagster;
}

function setupKeys() {
  const forget = $("#keys-forget");
  forget.hidden = !hasStoredKeys();
  forget.addEventListener("click", () => {
    forgetKeys();
    location.reload(); // every request asks again
  });
  window.addEventListener(KEYS_CHANGED, () => (forget.hidden = !hasStoredKeys()));
}

function start() {
  setupKeys();
  setupCharts();
  setupTrendRange();
  setupPanel();
  setupRules();
  setupUpload();
  setupPages();
  connectStream();
  loadBoardOnce().catch(console.warn);
  loadConfig().catch(console.warn);
  loadRules().catch((error) => setMessage($("#rules-message"), error.message, "error"));
  refreshAll();
  setInterval(() => loadStatus().catch(console.warn), STATUS_POLL_MS);
  setInterval(queueBoardRender, 60_000); // keep "last activity" current
}

start();
