// Keys the API may ask for: the read key (LEADSCORE_READ_KEY) on every read, the ingest key (LEADSCORE_INGEST_KEY) on
// uploads. Asked for on the first 401, kept in this browser (localStorage), sent as `Authorization: Bearer`.

const STORED = { read: "leadscore.readKey", ingest: "leadscore.ingestKey" };
const WHY = {
  read: "This LeadScore asks for its read key (LEADSCORE_READ_KEY) or the admin token before it shows any data.",
  ingest: "Uploading asks for the ingest key (LEADSCORE_INGEST_KEY).",
};

const asking = {}; // kind -> the pending question, shared by every request that got a 401 meanwhile
const declined = {}; // kind -> the user cancelled: no more questions until the page is loaded again
let dialogs = Promise.resolve(); // one question on screen at a time

export const KEYS_CHANGED = "leadscore-keys-changed"; // dispatched on window when a key is saved
export const storedKey = (kind) => localStorage.getItem(STORED[kind]) || "";

export function forgetKeys() {
  for (const name of Object.values(STORED)) localStorage.removeItem(name);
}

export const hasStoredKeys = () => Object.keys(STORED).some((kind) => storedKey(kind));

function showKeyDialog(message) {
  const dialog = document.querySelector("#key-dialog");
  const input = document.querySelector("#key-input");
  document.querySelector("#key-why").textContent = message;
  input.value = "";
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "save" ? input.value.trim() : ""), { once: true });
    dialog.showModal();
  });
}

/** The key to try next after `refused` (the one a 401 answered; "" for none), or "" when there is none. */
function nextKey(kind, refused) {
  if (storedKey(kind) !== refused) return Promise.resolve(storedKey(kind)); // another request got a new one meanwhile
  if (declined[kind]) return Promise.resolve("");
  if (!asking[kind]) {
    const message = (refused ? "The saved key was refused. " : "") + WHY[kind] + " It is kept in this browser.";
    asking[kind] = dialogs.then(() => showKeyDialog(message)).then((key) => {
      if (key) {
        localStorage.setItem(STORED[kind], key);
        window.dispatchEvent(new Event(KEYS_CHANGED));
      } else {
        declined[kind] = true;
      }
      delete asking[kind];
      return key;
    });
    dialogs = asking[kind].catch(() => {});
  }
  return asking[kind];
}

/** fetch with the stored key of `kind`; on a 401, asks for the key and tries again. A request that brings its own
 * Authorization header (the admin token) is sent as it is. */
export async function authorizedFetch(path, options = {}, kind = "read") {
  const own = new Headers(options.headers).has("Authorization");
  for (;;) {
    const key = own ? "" : storedKey(kind);
    const headers = new Headers(options.headers);
    if (key) headers.set("Authorization", `Bearer ${key}`);
    const response = await fetch(path, { ...options, headers });
    if (response.status !== 401 || own || !(await nextKey(kind, key))) return response;
  }
}

/** Downloads `href` (an export) with the read key, under the file name the server gives. */
export async function download(href) {
  const response = await authorizedFetch(href);
  if (!response.ok) throw new Error(`${href}: HTTP ${response.status}`);
  const disposition = response.headers.get("Content-Disposition") || "";
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] || "export";
  const url = URL.createObjectURL(await response.blob());
  const link = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
