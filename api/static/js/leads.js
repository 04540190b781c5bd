// The Leads page: every lead, one page at a time, searched, filtered and sorted by the API (never in the browser).
import { $, $$, api, debounce, h, integer, tierBadge, timeAgo, utcDateTime } from "./util.js";
import { download, storedKey } from "./access.js";

const TYPING_MS = 300; // a search or company typed in waits this long for the next key
const PAGE_SIZES = [25, 50, 100, 200];
const SORTS = ["score", "last_event_at", "name", "company", "email"];
const TIERS = ["qualified", "hot", "warm", "cold"];
// Numbers read best highest first, words from A.
const FIRST_ORDER = { score: "desc", last_event_at: "desc", name: "asc", company: "asc", email: "asc" };

const state = { search: "", tier: "", company: "", sort_by: "score", order: "desc", limit: 50 };
// Where the shown page starts: the API's cursor when it gives one, else an offset; `previous` is the way back.
let position = { cursor: null, offset: 0 };
let previous = [];
let shown = null; // the last page rendered, and the JSON it came from (to skip redrawing an unchanged page)
let inFlight = null; // the AbortController of the request under way: a newer user action cancels it
let hooks = { openLead: () => {}, selectedLead: () => null };
let companiesLoaded = false;

/** The filter, as the API and the export take it (only what is set). */
function filterParams() {
  const params = new URLSearchParams();
  for (const key of ["company", "tier", "search"]) if (state[key]) params.set(key, state[key]);
  return params;
}

function pageParams() {
  const params = filterParams();
  params.set("sort_by", state.sort_by);
  params.set("order", state.order);
  params.set("limit", String(state.limit));
  // With a cursor the API ignores the offset; sending it anyway keeps an API without cursors paging right.
  params.set("offset", String(position.offset));
  if (position.cursor) params.set("cursor", position.cursor);
  return params;
}

function leadsPageVisible() {
  return !$("#leads-page").hidden;
}

/** Asks for the current page; any request still under way is aborted, so only the newest answer is drawn. */
async function load() {
  inFlight?.abort();
  const controller = new AbortController();
  inFlight = controller;
  $("#leads-page").setAttribute("aria-busy", "true");
  try {
    const page = await api(`/api/leads?${pageParams()}`, { signal: controller.signal });
    if (controller.signal.aborted) return; // aborted while the body was read
    render(page);
  } catch (error) {
    if (controller.signal.aborted) return;
    $("#leads-count").textContent = `Could not load leads: ${error.message}`;
    console.warn("leads failed:", error);
  } finally {
    if (inFlight === controller) {
      inFlight = null;
      $("#leads-page").removeAttribute("aria-busy");
    }
  }
}

function hasNext(page) {
  // An API with cursors says when there is no more; one without is paged by offset against the total.
  if ("next_cursor" in page) return page.next_cursor !== null;
  return position.offset + page.leads.length < page.total;
}

function render(page) {
  const json = JSON.stringify(page);
  const same = shown && shown.json === json;
  shown = { page, json };
  const plus = page.total_exact === false ? "+" : "";
  const noun = page.total === 1 && !plus ? "lead" : "leads";
  $("#leads-count").textContent = `${integer.format(page.total)}${plus} ${noun}`;
  const first = position.offset + 1;
  $("#leads-range").textContent = page.leads.length
    ? `${integer.format(first)}–${integer.format(first + page.leads.length - 1)}`
    : "";
  $("#leads-prev").disabled = previous.length === 0;
  $("#leads-next").disabled = !hasNext(page);
  $("#leads-empty").hidden = page.leads.length > 0;
  $("#leads-empty").textContent = position.offset > 0 ? "No more leads on this page." : "No leads match.";
  if (same) return; // a refresh that changed nothing leaves the rows (and the hover) alone
  $("#leads-table tbody").replaceChildren(...page.leads.map(leadRow));
  markSelectedLead();
}

function leadRow(lead) {
  const open = () => hooks.openLead(lead.lead_key);
  return h(
    "tr",
    {
      tabindex: "0",
      dataset: { leadKey: lead.lead_key },
      onclick: open,
      onkeydown: (event) => event.key === "Enter" && open(),
    },
    h("td", { class: "who", title: lead.lead_key }, lead.email || lead.lead_key),
    h("td", { class: "name", title: lead.name || "" }, lead.name || ""),
    h("td", { class: "company", title: lead.company || "" }, lead.company || ""),
    h("td", { class: "num score" }, integer.format(lead.score)),
    h("td", {}, tierBadge(lead.tier)),
    h(
      "td",
      { class: "num when", title: lead.last_event_at ? `${utcDateTime(lead.last_event_at)} UTC` : "" },
      timeAgo(lead.last_event_at),
    ),
  );
}

export function markSelectedLead() {
  const key = hooks.selectedLead();
  for (const row of $$("#leads-table tbody tr")) row.classList.toggle("selected", row.dataset.leadKey === key);
}

/** Shows the page at `to`; until it is drawn, Next and Previous wait (they would start from the page before). */
function goTo(to) {
  position = to;
  shown = null;
  $("#leads-prev").disabled = $("#leads-next").disabled = true;
  load();
}

/** A new filter, sort or page size: back to the first page. */
function restart() {
  previous = [];
  showFilter();
  goTo({ cursor: null, offset: 0 });
}

/** The filter in the export links, the sort in the column heads, and both in the address (so a reload keeps them). */
function showFilter() {
  const filter = filterParams();
  for (const link of $$("[data-export]")) {
    const params = new URLSearchParams(filter);
    params.set("format", link.dataset.export);
    link.href = `/api/export/leads?${params}`;
  }
  for (const th of $$("#leads-table th[data-sort]")) {
    const sorted = th.dataset.sort === state.sort_by;
    th.setAttribute("aria-sort", sorted ? (state.order === "asc" ? "ascending" : "descending") : "none");
  }
  const view = filterParams();
  if (state.sort_by !== "score" || state.order !== "desc") {
    view.set("sort_by", state.sort_by);
    view.set("order", state.order);
  }
  if (state.limit !== 50) view.set("limit", String(state.limit));
  const query = view.toString();
  const hash = query ? `#leads?${query}` : "#leads";
  $('[data-page="leads"]').href = hash; // back from the overview to the same view
  if (leadsPageVisible() && location.hash !== hash) history.replaceState(null, "", hash);
}

/** Takes the view from the address (`#leads?tier=hot&sort_by=name&order=asc`), ignoring anything unknown. */
function readAddress() {
  const query = location.hash.split("?")[1] || "";
  const params = new URLSearchParams(query);
  state.search = (params.get("search") || "").slice(0, 200);
  state.company = params.get("company") || "";
  state.tier = TIERS.includes(params.get("tier")) ? params.get("tier") : "";
  state.sort_by = SORTS.includes(params.get("sort_by")) ? params.get("sort_by") : "score";
  state.order = ["asc", "desc"].includes(params.get("order")) ? params.get("order") : FIRST_ORDER[state.sort_by];
  const limit = Number(params.get("limit"));
  state.limit = PAGE_SIZES.includes(limit) ? limit : 50;
  $("#leads-search").value = state.search;
  $("#leads-company").value = state.company;
  $("#leads-tier").value = state.tier;
  $("#leads-limit").value = String(state.limit);
}

async function loadCompanyOptions() {
  if (companiesLoaded) return;
  companiesLoaded = true;
  try {
    // Suggestions only: the biggest companies; any other name can still be typed.
    const { companies } = await api("/api/analytics/companies?limit=100");
    $("#leads-companies").replaceChildren(...companies.map((c) => h("option", { value: c.company })));
  } catch (error) {
    companiesLoaded = false;
    console.warn("company suggestions failed:", error);
  }
}

/** Shown when the address says `#leads`: reads the view from it and asks for the first page. */
export function openLeadsPage() {
  readAddress();
  restart();
  loadCompanyOptions();
}

/** Scores changed: redraw the page in view (same place, same filter) unless a request is already on its way. */
export function refreshLeadsPage() {
  if (leadsPageVisible() && inFlight === null) load();
}

export function setupLeadsPage(options) {
  hooks = { ...hooks, ...options };
  showFilter(); // the first hrefs of the export links and the tab
  for (const link of $$("[data-export]")) {
    // A link cannot send the read key: with one kept, the export is fetched with it and saved from memory.
    link.addEventListener("click", (event) => {
      if (!storedKey("read")) return;
      event.preventDefault();
      download(link.href).catch((error) => console.warn("export:", error.message));
    });
  }
  $("#leads-limit").replaceChildren(...PAGE_SIZES.map((n) => h("option", { value: String(n) }, String(n))));
  $("#leads-limit").value = String(state.limit);
  $("#leads-filters").addEventListener("submit", (event) => event.preventDefault());

  const typed = (key, input) => {
    const value = input.value.trim();
    if (value === state[key]) return; // e.g. a space typed, or the same text again
    state[key] = value;
    restart();
  };
  const search = $("#leads-search");
  const company = $("#leads-company");
  const typedSearch = debounce(() => typed("search", search), TYPING_MS);
  const typedCompany = debounce(() => typed("company", company), TYPING_MS);
  search.addEventListener("input", typedSearch);
  company.addEventListener("input", typedCompany);
  // Enter (or picking a suggestion) needs no wait.
  search.addEventListener("change", () => typed("search", search));
  company.addEventListener("change", () => typed("company", company));
  $("#leads-tier").addEventListener("change", (event) => {
    state.tier = event.target.value;
    restart();
  });
  $("#leads-limit").addEventListener("change", (event) => {
    state.limit = Number(event.target.value);
    restart();
  });
  $("#leads-clear").addEventListener("click", () => {
    search.value = company.value = $("#leads-tier").value = "";
    Object.assign(state, { search: "", company: "", tier: "" });
    restart();
  });

  for (const th of $$("#leads-table th[data-sort]")) {
    $("button", th).addEventListener("click", () => {
      const key = th.dataset.sort;
      if (state.sort_by === key) state.order = state.order === "asc" ? "desc" : "asc";
      else Object.assign(state, { sort_by: key, order: FIRST_ORDER[key] });
      restart();
    });
  }

  $("#leads-next").addEventListener("click", () => {
    if (!shown || !hasNext(shown.page)) return;
    const { page } = shown;
    previous.push(position);
    const offset = position.offset + page.leads.length;
    goTo({ cursor: page.next_cursor || null, offset });
  });
  $("#leads-prev").addEventListener("click", () => {
    if (shown && previous.length) goTo(previous.pop());
  });
}
