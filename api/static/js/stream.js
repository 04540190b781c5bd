// The live stream read with fetch, not EventSource: EventSource cannot send the Authorization header a read key needs.
import { authorizedFetch } from "./access.js";

const OFFLINE_RETRY_MS = 5000;

/** Follows the Server-Sent Events at `path`: `handlers[event](data)` for each event, `onState(state)` with "live",
 * "reconnecting" or "offline". Reconnects on its own, after the server's `retry` when the stream ends. */
export function followStream(path, handlers, onState) {
  let retryMs = OFFLINE_RETRY_MS;
  const connect = async () => {
    let wait = OFFLINE_RETRY_MS;
    try {
      const response = await authorizedFetch(path, { headers: { Accept: "text/event-stream" }, cache: "no-store" });
      if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
      onState("live");
      await readEvents(response.body, (type, data) => handlers[type]?.(data), (ms) => (retryMs = ms));
      onState("reconnecting");
      wait = retryMs;
    } catch (error) {
      console.warn("stream:", error.message);
      onState("offline");
    }
    setTimeout(connect, wait);
  };
  connect();
}

/** The text/event-stream format (HTML Living Standard, "Server-sent events"): `field: value` lines; a blank line
 * ends an event. The `id` is not kept: every connection starts with a fresh snapshot. */
async function readEvents(body, onEvent, onRetry) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let type = "message";
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    // A CR at the very end may be the first half of a CRLF split between chunks: it waits for the next one.
    const lines = buffer.split(/\r\n|\r(?!$)|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (data.length) onEvent(type, data.join("\n"));
        type = "message";
        data = [];
        continue;
      }
      const colon = line.indexOf(":");
      if (colon === 0) continue; // a comment: the server's keepalive
      const field = colon < 0 ? line : line.slice(0, colon);
      const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") type = text;
      else if (field === "data") data.push(text);
      else if (field === "retry" && /^\d+$/.test(text)) onRetry(Number(text));
    }
  }
}
