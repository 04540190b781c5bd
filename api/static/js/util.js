// Small helpers every part of the dashboard shares: DOM building, the JSON API client, number and time formats.
import { authorizedFetch } from "./access.js";

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
export const integer = new Intl.NumberFormat("en-US");
export const decimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

/** An element with attributes and children (strings become text nodes, so data is never parsed as HTML). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && Array.isArray(body.detail) ? body.detail : null;
    const text = detail
      ? detail.map((d) => (d.index !== undefined ? `#${d.index} ` : "") + `${d.field}: ${d.error}`).join("; ")
      : `HTTP ${status}`;
    super(text);
    this.status = status;
  }
}

/** A JSON request with the stored key of `kind` ("read", or "ingest" for uploads), asking for it on a 401. */
export async function api(path, options = {}, kind = "read") {
  const response = await authorizedFetch(path, options, kind);
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export function signed(n) {
  return n > 0 ? `+${integer.format(n)}` : n < 0 ? `-${integer.format(-n)}` : "0";
}

export function timeAgo(iso) {
  if (!iso) return "";
  const seconds = (Date.now() - Date.parse(iso)) / 1000;
  if (seconds < 60) return "just now";
  const minutes = seconds / 60;
  if (minutes < 60) return `${Math.floor(minutes)} min ago`;
  const hours = minutes / 60;
  if (hours < 24) return `${Math.floor(hours)} h ago`;
  const days = hours / 24;
  if (days < 60) return `${Math.floor(days)} d ago`;
  return utcDate(iso);
}

export function utcDate(iso) {
  return new Date(iso).toISOString().slice(0, 10);
}

export function utcDateTime(iso) {
  return new Date(iso).toISOString().slice(0, 16).replace("T", " ");
}

export function tierBadge(tier) {
  return h("span", { class: `badge ${tier}` }, tier);
}

export function setMessage(node, text, kind = "") {
  node.textContent = text;
  node.className = `message ${kind}`;
}

/** Run `fn` at most once per `ms`, trailing: calls in between are folded into the next run. */
export function throttle(fn, ms) {
  let timer = null;
  return () => {
    if (timer === null) {
      timer = setTimeout(() => {
        timer = null;
        fn();
      }, ms);
    }
  };
}

/** Run `fn` once calls have paused for `ms` (typing in a search box): only the last call's arguments count. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
