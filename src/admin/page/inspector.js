// @ts-check
// sio-emu inspector: the page's script (served at /_emu/inspector.js; see inspector.html for
// what the page shows and the endpoints it uses).

"use strict";

// ---------------------------------------------------------------------------------------------
// The timeline's JSON (type-checked with `tsc --noEmit`, see package.json beside this file)
// ---------------------------------------------------------------------------------------------

/**
 * The Socket.IO packet inside a frame, decoded by the server (`null` for other packets, or
 * `{error}` when it does not decode).
 * @typedef {object} DecodedPacket
 * @property {string} [type]      CONNECT, EVENT, ACK, CONNECT_ERROR, ...
 * @property {string} [namespace]
 * @property {string | null} [event]
 * @property {unknown} [args]
 * @property {number | null} [ackId]
 * @property {string} [error]
 */

/**
 * One entry of `GET /_emu/events` (a live-log JSON line plus its `seq`). `type` names the hop;
 * each other field is there when that hop has it.
 * @typedef {object} TimelineEntry
 * @property {number} seq
 * @property {EntryType} type
 * @property {string} [time]
 * @property {string} [hub]
 * @property {string | null} [connectionId]
 * @property {string} [socketId]
 * @property {string} [namespace]
 * @property {string | null} [userId]
 * @property {string} [transport]
 * @property {string | null} [refused]
 * @property {unknown} [claims]
 * @property {string} [event]
 * @property {string} [url]
 * @property {number | null} [status]
 * @property {number} [latencyMs]
 * @property {number} [attempts]
 * @property {string} [detail]
 * @property {boolean} [ok]
 * @property {string} [hint]
 * @property {string} [origin]     "inspector" for the page's own actions
 * @property {boolean} [virtual]    traffic of a virtual client (the Clients tab, POST /_emu/clients)
 * @property {string} [direction]  a frame's: "in" or "out"
 * @property {string} [packet]
 * @property {DecodedPacket | null} [socketio]
 * @property {string} [reason]
 * @property {string} [method]
 * @property {string} [operation]
 * @property {string} [target]
 * @property {number | null} [matched]
 * @property {string} [message]
 * @property {string} [path]
 * @property {string} [rule]
 * @property {string} [section]
 * @property {string} [action]
 * @property {number} [connections]
 * @property {number} [total]
 * @property {Record<string, number>} [rules]
 * @property {number} [_cost]      page-side: the JSON characters it keeps (not enumerable)
 * @property {number} [_cut]       page-side: characters cut on arrival (not enumerable)
 * @property {string} [_text]      page-side: its search text (not enumerable)
 */

/**
 * @typedef {"handshake" | "upgrade" | "namespaceConnect" | "frame" | "webhook" | "ackForwarded"
 *   | "socketDisconnected" | "connectionClosed" | "rest" | "warning" | "error" | "lint"
 *   | "lintSummary" | "fault" | "admin" | "shuttingDown"} EntryType
 */

/**
 * `GET /_emu/entries/<seq>`: the entry and, for a webhook call, the request as sent and the
 * whole answer.
 * @typedef {object} EntryDetails
 * @property {number} seq
 * @property {TimelineEntry} [entry]
 * @property {{method?: string, url?: string, headers?: Record<string, string>, body?: string}} [request]
 * @property {{status?: number, latencyMs?: number, headers?: Record<string, string>, body?: string}} [response]
 * @property {string} [error]      why the call got no answer
 * @property {{body?: string}} [call]  a REST call as the handler sent it
 * @property {number | null} [matched]
 * @property {string} [error404]   page-side: why the details could not be fetched
 */

/** A failed admin call: the `{code, message}` body's text, with the status and the body. */
class AdminCallError extends Error {
  /** @param {string} message @param {number} status @param {unknown} data */
  constructor(message, status, data) {
    super(message);
    this.status = status;
    this.data = data;
  }
}

// ---------------------------------------------------------------------------------------------
// Constants and state
// ---------------------------------------------------------------------------------------------

const MAX_ENTRIES = 5000;
const TRIM_BATCH = 250;
const BUDGET_CHARS = 32 * 1024 * 1024; // entry text the page keeps in all (JSON characters)
const ENTRY_CHARS = 16 * 1024;   // an entry larger than this is cut down to about this much...
const VALUE_CHARS = 2048;        // ...each string in it to at most this many characters
const SHOWN_CHARS = 20_000;      // a details block shows this much until "show all" is clicked
const MAX_IDS = 20_000;        // sockets and connections remembered for the socket/user filters
const MAX_VIEW_BASE = 200_000; // rows layer offset stays far below the browser's layout limits
const ROW_HEIGHT = 22;
const OVERSCAN = 8;
const CONNECTIONS_EVERY_MS = 2000;
const REFRESH_DEBOUNCE_MS = 300;
const MIN_RENDER_MS = 100;
const KINDS = [
  "handshake", "upgrade", "namespaceConnect", "frame", "webhook", "ackForwarded",
  "socketDisconnected", "connectionClosed", "rest", "warning", "error", "lint", "fault",
  "admin", "shuttingDown",
];
/** Timeline types after which the connections view is re-fetched. */
const CONNECTION_CHANGES = new Set([
  "handshake", "namespaceConnect", "socketDisconnected", "connectionClosed", "rest", "admin",
]);

const model = {
  /** @type {TimelineEntry[]} */
  entries: [],          // kept entries, by increasing seq (at most MAX_ENTRIES)
  /** @type {Map<number, TimelineEntry>} */
  bySeq: new Map(),     // seq → entry
  discarded: 0,         // entries the page let go of to stay bounded
  chars: 0,             // entry text kept (the JSON length of every kept entry)
  letGo: 0,             // entry text let go: values cut on arrival and entries discarded
  dropped: 0,           // entries the server dropped for this page (`event: dropped`)
  lastSeq: 0,
  /** @type {Map<string, {connectionId: string, namespace?: string}>} */
  socketConn: new Map(),  // socketId → {connectionId, namespace}
  /** @type {Map<string, string>} */
  connUser: new Map(),    // connectionId → userId
};

const ui = {
  view: [],             // the kept entries that pass the filters, by seq
  viewBase: 0,          // how many entries left the front of the view since it was rebuilt
  fresh: [],            // entries that arrived since the last render
  rebuild: true,        // the view must be recomputed from the model
  paused: false,
  follow: true,         // keep the newest row in sight
  selected: null,       // selected seq
  frame: 0,             // pending render (timer, then animation frame)
  lastRender: 0,        // when the last render ran (performance.now())
  filters: {},
  tab: "details",
  rows: [],             // pooled row elements
  viewport: null,       // the scrolling timeline element, its tall inner spacer, the rows' layer
  spacer: null,
  layer: null,
  scrollTop: 0,         // last known scroll position and height of the viewport
  viewHeight: 0,
};

const $ = (sel, root = document) => root.querySelector(sel);
const byTestId = (id) => $(`[data-testid="${id}"]`);

// ---------------------------------------------------------------------------------------------
// Small DOM helpers (text only, never HTML)
// ---------------------------------------------------------------------------------------------

/** Creates an element with attributes and children (strings become text nodes). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "onclick") node.addEventListener("click", value);
    else if (key === "class") node.className = value;
    else if (key === "testid") node.dataset.testid = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** A two-column key/value table (long values cut to SHOWN_CHARS). */
function kvTable(pairs, testid) {
  return el("table", { class: "kv", testid },
    pairs.filter(([, v]) => v !== undefined).map(([k, v]) =>
      el("tr", {}, el("td", {}, k), el("td", {}, v === null ? "—" : cut(String(v))))));
}

/** `text`, or its first SHOWN_CHARS characters and an ellipsis. */
function cut(text) {
  return text.length <= SHOWN_CHARS ? text : detached(text.slice(0, SHOWN_CHARS)) + "…";
}

/**
 * A block of text cut to SHOWN_CHARS, with a "show all" button that fetches the entry again
 * (`/_emu/entries/<seq>`, only when clicked) and shows the whole text `pick` takes from it.
 * Nothing here keeps the long text: the page holds only what is on screen.
 */
function longPre(text, testid, seq, pick) {
  if (text.length <= SHOWN_CHARS) return el("pre", { testid }, text);
  const pre = el("pre", { testid }, cut(text));
  const note = el("span", { class: "note" }, `${fmtBytes(text.length - SHOWN_CHARS)} more`);
  const more = el("button", { testid: `${testid}-show-all`, onclick: () => showAll(pre, more, note, seq, pick) },
    "show all");
  return el("div", {}, pre, el("div", { class: "buttons" }, more, note));
}

async function showAll(pre, button, note, seq, pick) {
  note.textContent = "loading…";
  try {
    pre.textContent = pick(await api("GET", `/_emu/entries/${seq}`)) ?? "";
    button.remove();
    note.remove();
  } catch (err) {
    note.textContent = err.status === 404 ? "this entry has left the server's ring; only its start is shown" : err.message;
  }
}

/** Pretty JSON text, or the text itself when it is not JSON. */
function pretty(value) {
  if (typeof value === "string") {
    try { return JSON.stringify(JSON.parse(value), null, 2); } catch { return value; }
  }
  return JSON.stringify(value, null, 2);
}

function fmtTime(iso) {
  if (!iso) return "";
  const t = iso.indexOf("T");
  return t >= 0 ? iso.slice(t + 1, t + 13) : iso;
}

function short(id) {
  return id && id.length > 12 ? id.slice(0, 10) + "…" : id ?? "";
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/** fetch + JSON; throws an Error with the server's message on a non-2xx answer. */
async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!res.ok) {
    throw new AdminCallError(data && data.message ? `${data.code}: ${data.message}` : `HTTP ${res.status}`,
      res.status, data);
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// Model: ingest entries from the stream, stay bounded
// ---------------------------------------------------------------------------------------------

/** A copy of `text` that shares no memory with the (possibly huge) string it was cut from. */
function detached(text) {
  return JSON.parse(JSON.stringify(text));
}

/**
 * `value` with every string cut to VALUE_CHARS and, past ENTRY_CHARS in all, the remaining
 * items of arrays and objects left out (an ellipsis marks each cut).
 */
function clipValue(value, room) {
  if (typeof value === "string") {
    const keep = Math.max(0, Math.min(value.length, VALUE_CHARS, room.left));
    room.left -= keep;
    return keep === value.length ? value : value.slice(0, keep) + "…";
  }
  if (value === null || typeof value !== "object") {
    room.left -= 8;
    return value;
  }
  if (Array.isArray(value)) {
    const out = [];
    for (const item of value) {
      if (room.left <= 0) {
        out.push(`… ${value.length - out.length} more`);
        break;
      }
      out.push(clipValue(item, room));
    }
    return out;
  }
  const out = {};
  for (const [key, item] of Object.entries(value)) {
    if (room.left <= 0) {
      out["…"] = "more keys not kept";
      break;
    }
    out[clipValue(key, room)] = clipValue(item, room);
  }
  return out;
}

/**
 * The entry as the page keeps it and what that costs: an entry whose JSON is longer than
 * ENTRY_CHARS is cut down ([`clipValue`]) and parsed again from its own short text, so nothing
 * kept refers to the long original.
 */
/** @param {TimelineEntry} entry @param {number} size @returns {{entry: TimelineEntry, cost: number}} */
function keepable(entry, size) {
  if (size <= ENTRY_CHARS) return { entry, cost: size };
  const text = JSON.stringify(clipValue(entry, { left: ENTRY_CHARS }));
  const kept = JSON.parse(text);
  Object.defineProperty(kept, "_cut", { value: size - text.length, enumerable: false });
  return { entry: kept, cost: text.length };
}

/**
 * Takes one timeline entry of the stream, `size` characters of JSON.
 * @param {TimelineEntry} parsed @param {number} size
 */
function ingest(parsed, size) {
  if (typeof parsed.seq !== "number" || parsed.seq <= model.lastSeq) return;
  const { entry, cost } = keepable(parsed, size);
  Object.defineProperty(entry, "_cost", { value: cost, enumerable: false });
  model.chars += cost;
  model.letGo += size - cost;
  model.lastSeq = entry.seq;
  model.entries.push(entry);
  model.bySeq.set(entry.seq, entry);
  learnIdentities(entry);
  trimModel();
  if (ui.paused || ui.fresh.length >= MAX_ENTRIES) {
    ui.rebuild = true; // rendered from the model as a whole next time
    ui.fresh = [];
  } else if (!ui.rebuild) {
    ui.fresh.push(entry);
  }
  if (!isAdminRead(entry)) {
    if (CONNECTION_CHANGES.has(entry.type)) scheduleRefresh("connections");
    if (entry.type === "lint") scheduleRefresh("lint");
    if (entry.type === "fault" || entry.type === "admin") scheduleRefresh("faults");
  }
  scheduleRender();
}

/** Remembers which connection a socket belongs to and which user a connection has. @param {TimelineEntry} e */
function learnIdentities(e) {
  if (e.socketId && e.connectionId) {
    remember(model.socketConn, e.socketId, { connectionId: e.connectionId, namespace: e.namespace });
  }
  if (e.connectionId && e.userId) remember(model.connUser, e.connectionId, e.userId);
}

/** Map.set that forgets the oldest keys beyond MAX_IDS, so long sessions stay bounded. */
function remember(map, key, value) {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_IDS) map.delete(map.keys().next().value);
}

/**
 * Drops the oldest entries beyond MAX_ENTRIES or beyond BUDGET_CHARS of text (at least
 * TRIM_BATCH at a time) and counts them.
 */
function trimModel() {
  if (model.entries.length <= MAX_ENTRIES && model.chars <= BUDGET_CHARS) return;
  let count = Math.max(model.entries.length - MAX_ENTRIES, TRIM_BATCH);
  let chars = model.chars;
  for (let i = 0; i < model.entries.length && (i < count || chars > BUDGET_CHARS); i++) {
    chars -= model.entries[i]._cost;
    count = Math.max(count, i + 1);
  }
  const gone = model.entries.splice(0, count);
  for (const e of gone) {
    model.bySeq.delete(e.seq);
    model.chars -= e._cost;
    model.letGo += e._cost;
  }
  model.discarded += gone.length;
}

function clearModel() {
  model.discarded += model.entries.length;
  model.letGo += model.chars;
  model.chars = 0;
  model.entries = [];
  model.bySeq.clear();
  ui.rebuild = true;
  ui.fresh = [];
  scheduleRender();
}

// ---------------------------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------------------------

/** @param {TimelineEntry} e */
function isProblem(e) {
  switch (e.type) {
    case "error": case "warning": case "lint": case "fault": return true;
    case "handshake": case "namespaceConnect": return Boolean(e.refused);
    case "webhook": return e.ok === false;
    case "rest": case "admin": return e.status >= 400;
    case "frame": return e.socketio?.type === "CONNECT_ERROR";
    default: return false;
  }
}

/** A GET of an admin route (this page's own polling, or a script's): hidden unless asked for. @param {TimelineEntry} e */
function isAdminRead(e) {
  return e.type === "admin" && e.method === "GET" && e.status < 400;
}

/** @param {TimelineEntry} e */
function isFinding(e) {
  return e.type === "lint" || e.type === "warning" || e.type === "fault";
}

/** @param {TimelineEntry} e */
function eventName(e) {
  return e.event ?? e.socketio?.event ?? null;
}

function readFilters() {
  const f = {};
  for (const input of /** @type {NodeListOf<HTMLInputElement>} */ (document.querySelectorAll("[data-filter]"))) {
    const key = input.dataset.filter;
    f[key] = input.type === "checkbox" ? input.checked : input.value.trim();
  }
  f.search = (f.search || "").toLowerCase();
  ui.filters = f;
}

/** Does a frame-like entry without a socket id belong to socket `id`'s conversation? */
/** @param {TimelineEntry} e @param {string} id */
function inSocketConversation(e, id) {
  if (e.socketId) return e.socketId === id;
  const owner = model.socketConn.get(id);
  if (!owner || e.connectionId !== owner.connectionId) return false;
  const ns = e.namespace ?? e.socketio?.namespace;
  return ns === undefined || ns === null || ns === owner.namespace;
}

/** @param {TimelineEntry} e */
function matches(e) {
  const f = ui.filters;
  if (f.kind && e.type !== f.kind) return false;
  if (!f.reads && isAdminRead(e)) return false;
  if (f.errors && !isProblem(e)) return false;
  if (f.hub && e.hub !== f.hub) return false;
  if (f.namespace && (e.namespace ?? e.socketio?.namespace) !== f.namespace) return false;
  if (f.connection && e.connectionId !== f.connection) return false;
  if (f.socket && !inSocketConversation(e, f.socket)) return false;
  if (f.user && (e.userId ?? model.connUser.get(e.connectionId)) !== f.user) return false;
  if (f.event && eventName(e) !== f.event) return false;
  if (f.search && !searchText(e).includes(f.search)) return false;
  return true;
}

/** @param {TimelineEntry} e */
function searchText(e) {
  if (e._text === undefined) {
    Object.defineProperty(e, "_text", { value: JSON.stringify(e).toLowerCase(), enumerable: false });
  }
  return e._text;
}

function setFilter(key, value) {
  const input = $(`[data-filter="${key}"]`);
  if (input.type === "checkbox") input.checked = Boolean(value);
  else input.value = value ?? "";
  onFiltersChanged();
}

function onFiltersChanged() {
  readFilters();
  ui.rebuild = true;
  ui.follow = true;
  scheduleRender();
}

function resetFilters() {
  for (const input of /** @type {NodeListOf<HTMLInputElement>} */ (document.querySelectorAll("[data-filter]"))) {
    if (input.type === "checkbox") input.checked = false;
    else input.value = "";
  }
  onFiltersChanged();
}

// ---------------------------------------------------------------------------------------------
// Timeline rendering: a window of pooled rows, at most once per animation frame
// ---------------------------------------------------------------------------------------------

/**
 * Asks for one render in the next animation frame, at most every MIN_RENDER_MS: at hundreds of
 * entries a second, fewer and larger DOM updates leave the page free to answer clicks.
 */
function scheduleRender() {
  if (ui.frame || ui.paused) return;
  const wait = ui.lastRender + MIN_RENDER_MS - performance.now();
  if (wait <= 0) {
    ui.frame = requestAnimationFrame(render);
  } else {
    ui.frame = setTimeout(() => {
      ui.frame = requestAnimationFrame(render);
    }, wait);
  }
}

/** Brings the view up to date; returns how many rows left its front (for scroll anchoring). */
function updateView() {
  let cut = 0;
  if (ui.rebuild) {
    ui.view = model.entries.filter(matches);
    ui.viewBase = 0;
    ui.rebuild = false;
  } else {
    for (const e of ui.fresh) if (matches(e)) ui.view.push(e);
    const oldest = model.entries.length ? model.entries[0].seq : Infinity;
    while (cut < ui.view.length && ui.view[cut].seq < oldest) cut++;
    if (cut) ui.view.splice(0, cut);
    ui.viewBase += cut;
    if (ui.viewBase > MAX_VIEW_BASE) ui.viewBase = 0; // keep row offsets small; rows re-place once
  }
  ui.layer.style.transform = `translateY(${-ui.viewBase * ROW_HEIGHT}px)`;
  ui.fresh = [];
  return cut;
}

/**
 * One frame: new entries into the view, the scroll position (follow the newest, or keep the
 * rows in sight where they are), then the visible window. Layout is read only via ui.scrollTop
 * and ui.viewHeight, so a frame forces at most one layout.
 */
function render() {
  ui.frame = 0;
  if (ui.paused) return;
  ui.lastRender = performance.now();
  const cut = updateView();
  const total = ui.view.length * ROW_HEIGHT;
  ui.spacer.style.height = `${total}px`;
  let top = ui.scrollTop;
  if (ui.follow) top = Math.max(0, total - ui.viewHeight);
  else if (cut) top = Math.max(0, top - cut * ROW_HEIGHT);
  if (top !== ui.scrollTop) scrollTimelineTo(top);
  renderWindow();
  renderCounters();
}

function scrollTimelineTo(top) {
  ui.scrollTop = top;
  ui.viewport.scrollTop = top;
}

/**
 * Rows of the window [first, last). An entry keeps its pooled row while it stays in the window
 * (row (viewBase + k) % pool size), so a frame only rebuilds the text of rows that are new.
 */
function renderWindow() {
  const first = Math.max(0, Math.floor(ui.scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(ui.view.length, Math.ceil((ui.scrollTop + ui.viewHeight) / ROW_HEIGHT) + OVERSCAN);
  const size = Math.ceil(ui.viewHeight / ROW_HEIGHT) + 2 * OVERSCAN + 2;
  while (ui.rows.length < size) {
    const row = makeRow();
    ui.rows.push(row);
    ui.layer.append(row);
  }
  const used = new Set();
  for (let k = first; k < last; k++) {
    const row = ui.rows[(ui.viewBase + k) % size];
    used.add(row);
    fillRow(row, ui.view[k], ui.viewBase + k);
  }
  for (const row of ui.rows) {
    if (!used.has(row) && !row.hidden) {
      row.hidden = true;
      row._entry = null;
    }
  }
}

function makeRow() {
  const row = el("div", { class: "row", testid: "row" },
    el("span", { class: "time" }), el("span", { class: "seq" }), el("span", { class: "kind" }),
    el("span", { class: "summary" }), el("span", { class: "who" }));
  row.hidden = true;
  row.addEventListener("click", onRowClick);
  return row;
}

/** Puts entry `e` at `position` (viewBase + its view index); its text is only rebuilt when `e` changes. */
function fillRow(row, e, position) {
  row.hidden = false;
  if (row._position !== position) {
    row._position = position;
    row.style.top = `${position * ROW_HEIGHT}px`;
    row.classList.toggle("alt", position % 2 === 1);
  }
  const selected = ui.selected === e.seq;
  if (row._selected !== selected) {
    row._selected = selected;
    row.classList.toggle("selected", selected);
  }
  if (row._entry === e) return;
  row._entry = e;
  row.dataset.seq = e.seq;
  row.dataset.type = e.type;
  row.classList.toggle("bad", isProblem(e) && !isFinding(e));
  row.classList.toggle("finding", isFinding(e));
  const [time, seq, kind, summary, who] = row.children;
  time.textContent = fmtTime(e.time);
  seq.textContent = `#${e.seq}`;
  kind.textContent = kindLabel(e);
  who.replaceChildren(...whoParts(e));
  row.classList.toggle("virtual", e.virtual === true);
  summary.textContent = (e.virtual ? "virtual client · " : "") + summarize(e);
  summary.title = summary.textContent;
}

/** @param {TimelineEntry} e */
function kindLabel(e) {
  if (e.type === "frame") return `frame ${e.direction === "in" ? "→" : "←"} ${e.socketio?.type ?? "eio"}`;
  if (e.type === "webhook") return `webhook ${e.event ?? ""}`;
  return e.type;
}

/** Hub / connection / socket, with clickable ids that filter the timeline. @param {TimelineEntry} e */
function whoParts(e) {
  const parts = [];
  if (e.hub) parts.push(e.hub, " ");
  if (e.connectionId) {
    parts.push(el("a", { href: "#", "data-conn": e.connectionId, title: "Follow this connection" }, short(e.connectionId)), " ");
  }
  if (e.socketId) {
    parts.push(el("a", { href: "#", "data-socket": e.socketId, title: "Follow this socket's conversation" }, `⤷${short(e.socketId)}`));
  }
  return parts;
}

/** @param {TimelineEntry} e */
function summarize(e) {
  switch (e.type) {
    case "handshake":
      return e.refused ? `REFUSED: ${e.refused}` : `${e.transport ?? ""} user=${e.userId ?? "—"}`;
    case "upgrade": return "polling → websocket";
    case "namespaceConnect":
      return `${e.namespace} ${e.refused ? `REFUSED: ${e.refused}` : "connected"}`;
    case "frame": return summarizeFrame(e);
    case "webhook":
      return `${e.namespace ?? ""} ${e.event} → ${e.status ?? "no answer"} ${fmtMs(e.latencyMs)} ${e.detail ?? ""}`;
    case "ackForwarded": return `${e.namespace ?? ""} ack ${e.packet}`;
    case "socketDisconnected": return `${e.namespace} ${e.reason || ""}`;
    case "connectionClosed": return e.reason || "closed";
    case "rest":
      return `${e.method} ${e.operation} ${e.target ?? ""} → ${e.status}` +
        (e.matched == null ? "" : ` matched ${e.matched}`) + (e.message ? ` ${e.message}` : "");
    case "lint": return `${e.rule}: ${e.message}`;
    case "fault": return `${e.rule} → ${e.action} (${e.event}) ${e.detail ?? ""}`;
    case "admin": return `${e.method} ${e.path} → ${e.status}${e.origin ? ` (${e.origin})` : ""}`;
    case "warning": case "error": return e.message;
    case "shuttingDown": return `${e.connections} connection(s)`;
    default: return JSON.stringify(e);
  }
}

/** @param {TimelineEntry} e */
function summarizeFrame(e) {
  const s = e.socketio;
  if (!s) return e.packet;
  const parts = [s.namespace];
  if (s.event) parts.push(s.event);
  if (s.ackId !== null && s.ackId !== undefined) parts.push(`ack#${s.ackId}`);
  if (s.args) parts.push(JSON.stringify(s.args));
  return parts.join(" ");
}

function fmtMs(ms) {
  return typeof ms === "number" ? `${ms.toFixed(1)} ms` : "";
}

function renderCounters() {
  byTestId("count-shown").textContent = ui.view.length;
  byTestId("count-kept").textContent = model.entries.length;
  byTestId("count-discarded").textContent = model.discarded;
  byTestId("count-dropped").textContent = model.dropped;
  const letGo = byTestId("count-let-go");
  letGo.textContent = fmtBytes(model.letGo);
  letGo.dataset.bytes = model.letGo;
  letGo.dataset.kept = model.chars;
  letGo.title = `${fmtBytes(model.chars)} of entry text kept, at most ${fmtBytes(BUDGET_CHARS)}`;
}

function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}

/** A scroll by the user: follow the newest rows again only when scrolled to the bottom. */
function onScroll() {
  const top = ui.viewport.scrollTop;
  if (top === ui.scrollTop) return; // our own scroll
  ui.scrollTop = top;
  ui.follow = top + ui.viewHeight >= ui.view.length * ROW_HEIGHT - ROW_HEIGHT;
  if (!ui.paused) renderWindow();
}

function onResize() {
  ui.viewHeight = ui.viewport.clientHeight;
  ui.scrollTop = ui.viewport.scrollTop;
  if (!ui.paused) renderWindow();
}

function onRowClick(event) {
  const link = event.target.closest("a");
  if (link) {
    event.preventDefault();
    if (link.dataset.socket) followSocket(link.dataset.socket);
    else if (link.dataset.conn) setFilter("connection", link.dataset.conn);
    return;
  }
  select(Number(event.currentTarget.dataset.seq));
}

/** Filters the timeline to one socket's conversation and fills the action form with it. */
function followSocket(socketId) {
  setFilter("socket", socketId);
  const owner = model.socketConn.get(socketId);
  if (owner) fillActionForm({ socketId, connectionId: owner.connectionId, namespace: owner.namespace });
}

function togglePause() {
  ui.paused = !ui.paused;
  byTestId("pause").textContent = ui.paused ? "Resume" : "Pause";
  byTestId("pause").dataset.paused = ui.paused;
  if (!ui.paused) {
    ui.rebuild = true;
    scheduleRender();
  }
}

/** Selects `seq`: shows its row (clearing filters that hide it) and its details. */
function select(seq) {
  ui.selected = seq;
  const entry = model.bySeq.get(seq);
  if (entry && !matches(entry)) resetFilters();
  updateView();
  const index = ui.view.findIndex((e) => e.seq === seq);
  if (index >= 0) {
    const top = index * ROW_HEIGHT;
    if (top < ui.scrollTop || top > ui.scrollTop + ui.viewHeight - ROW_HEIGHT) {
      ui.follow = false;
      scrollTimelineTo(Math.max(0, top - ui.viewHeight / 2));
    }
  }
  renderWindow();
  showDetails(seq);
}

// ---------------------------------------------------------------------------------------------
// Details panel
// ---------------------------------------------------------------------------------------------

async function showDetails(seq) {
  switchTab("details");
  const pane = byTestId("details");
  pane.dataset.seq = seq;
  const local = model.bySeq.get(seq);
  pane.replaceChildren(el("h2", {}, `#${seq} ${local ? kindLabel(local) : ""}`),
    el("p", { class: "note" }, "loading…"));
  /** @type {EntryDetails} */
  let data;
  try {
    data = await api("GET", `/_emu/entries/${seq}`);
  } catch (err) {
    data = { seq, entry: local, error404: err.status === 404 ? err.data?.code ?? "NotFound" : err.message };
  }
  if (pane.dataset.seq !== String(seq)) return; // another entry was selected meanwhile
  renderDetails(pane, data, local);
}

/** @param {HTMLElement} pane @param {EntryDetails} data @param {TimelineEntry | undefined} local */
function renderDetails(pane, data, local) {
  const entry = data.entry ?? local;
  const parts = [el("h2", {}, `#${data.seq} ${entry ? kindLabel(entry) : ""}`)];
  if (data.error404) {
    parts.push(el("p", { class: "note", testid: "details-gone" },
      data.error404 === "Gone" ? "This entry has left the server's ring; showing what the page kept."
        : `Details unavailable: ${data.error404}`));
  }
  if (!entry) {
    pane.replaceChildren(...parts.filter(Boolean));
    return;
  }
  if (!data.entry && local?._cut) {
    parts.push(el("p", { class: "note", testid: "details-cut" },
      `This page kept only the start of this entry's long values (${fmtBytes(local._cut)} let go).`));
  }
  const seq = data.seq;
  if (entry.type === "webhook") parts.push(...webhookDetails(data, entry));
  if (entry.type === "rest") parts.push(...restDetails(data));
  if (entry.type === "handshake") parts.push(...handshakeDetails(entry, seq));
  if (entry.type === "frame") parts.push(...frameDetails(entry, seq));
  parts.push(el("h3", {}, "Entry"),
    kvTable(Object.entries(entry).filter(([, v]) => typeof v !== "object" || v === null), "details-summary"),
    el("details", {}, el("summary", {}, "Raw entry (JSON)"),
      longPre(pretty(entry), "details-raw", seq, (d) => pretty(d.entry))));
  pane.replaceChildren(...parts.filter(Boolean));
}

function headersTable(headers, testid) {
  return el("table", { class: "kv", testid },
    (headers ?? []).map(([name, value]) => el("tr", {}, el("td", {}, cut(name)), el("td", {}, cut(value)))));
}

/** A webhook call: Copy as curl and Resend (its result on top), the request, the answer. */
function webhookDetails(data, entry) {
  const buttons = el("div", { class: "buttons" });
  if (data.curl) {
    buttons.append(el("button", { testid: "copy-curl", onclick: () => copyText(data.curl, buttons) }, "Copy as curl"));
  }
  const result = el("div", { testid: "resend-result" });
  buttons.append(el("button", { testid: "resend", onclick: () => resend(entry.seq, data, result) }, "Resend"));
  const out = [buttons, result];
  const req = data.request;
  if (req) {
    out.push(el("h3", {}, "Request"),
      req.method ? el("div", { class: "mono", testid: "details-request-line" }, `${req.method} ${req.url}`) : null,
      req.note ? el("p", { class: "note" }, req.note) : null,
      req.headers ? headersTable(req.headers, "details-request-headers") : null,
      longPre(pretty(req.body ?? ""), "details-request-body", data.seq, (d) => pretty(d.request?.body ?? "")));
  }
  out.push(el("h3", {}, "Answer"), answerBlock(data.response, data.error, "details-response", data.seq));
  return out;
}

/** A handler's answer: status, latency, headers, body (or the error); `seq` to show all of it. */
function answerBlock(response, error, testid, seq) {
  if (!response) {
    return el("div", { testid }, el("p", { class: "error-text" }, error ? `No answer: ${error}` : "No answer"));
  }
  return el("div", { testid },
    el("div", { class: "mono", testid: `${testid}-status` },
      `${response.status} · ${fmtMs(response.latencyMs)}`),
    response.headers ? headersTable(response.headers, `${testid}-headers`) : null,
    seq === undefined ? el("pre", { testid: `${testid}-body` }, cut(pretty(response.body ?? "")))
      : longPre(pretty(response.body ?? ""), `${testid}-body`, seq, (d) => pretty(d.response?.body ?? "")));
}

async function copyText(text, near) {
  let done = false;
  try {
    await navigator.clipboard.writeText(text);
    done = true;
  } catch {
    const area = el("textarea", {});
    area.value = text;
    document.body.append(area);
    area.select();
    done = document.execCommand("copy");
    area.remove();
  }
  const note = el("span", { class: "note", testid: "copy-result" }, done ? "copied" : "copy failed");
  near.append(note);
  setTimeout(() => note.remove(), 1500);
}

async function resend(seq, data, target) {
  target.replaceChildren(el("p", { class: "note" }, "resending…"));
  try {
    const r = await api("POST", "/_emu/resend", { seq });
    const old = r.old ?? data.response;
    target.replaceChildren(el("h3", {}, `Resent as #${r.seq}`),
      el("div", { class: "compare" },
        el("div", {}, el("b", {}, "Before"), answerBlock(old, data.error, "resend-old")),
        el("div", {}, el("b", {}, "Now"), answerBlock(r.new, r.error, "resend-new"))));
  } catch (err) {
    target.replaceChildren(el("p", { class: "error-text" }, err.message));
  }
}

function restDetails(data) {
  const out = [];
  const call = data.call;
  if (call) {
    out.push(el("h3", {}, "Call (authorization not shown)"),
      kvTable([["method", call.method], ["operation", call.operation], ["hub", call.hub],
        ["path", call.path], ["query", JSON.stringify(call.query ?? {})], ["status", call.status],
        ["matched", data.matched ?? null]], "details-rest-call"),
      longPre(pretty(call.body ?? ""), "details-rest-body", data.seq, (d) => pretty(d.call?.body ?? "")));
  }
  return out;
}

function handshakeDetails(entry, seq) {
  const out = [];
  if (entry.refused) out.push(el("h3", {}, "Refused"), el("p", { class: "error-text", testid: "details-refused" }, cut(entry.refused)));
  if (entry.claims) {
    out.push(el("h3", {}, "Token claims (decoded, unverified)"),
      longPre(pretty(entry.claims), "details-claims", seq, (d) => pretty(d.entry?.claims)));
  }
  return out;
}

function frameDetails(entry, seq) {
  const s = entry.socketio;
  const out = [el("h3", {}, "Packet"),
    longPre(entry.packet ?? "", "details-packet", seq, (d) => d.entry?.packet ?? "")];
  if (s) {
    out.push(el("h3", {}, "Socket.IO"), kvTable([["type", s.type], ["namespace", s.namespace],
      ["event", s.event ?? null], ["ack id", s.ackId ?? null]], "details-socketio"),
      longPre(pretty(s.args ?? null), "details-args", seq, (d) => pretty(d.entry?.socketio?.args ?? null)));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tabs and periodic refreshes
// ---------------------------------------------------------------------------------------------

const refreshers = { connections: refreshConnections, faults: refreshFaults, lint: refreshLint };
const refreshTimers = {};

function switchTab(name) {
  ui.tab = name;
  for (const b of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll("[data-tab]"))) b.classList.toggle("active", b.dataset.tab === name);
  for (const p of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll("[data-pane]"))) p.classList.toggle("active", p.dataset.pane === name);
  refreshers[name]?.();
}

/** Re-fetches a panel ~300 ms after the last change (only while it is shown; lint always). */
function scheduleRefresh(name) {
  if (name !== "lint" && ui.tab !== name) return;
  clearTimeout(refreshTimers[name]);
  refreshTimers[name] = setTimeout(() => refreshers[name](), REFRESH_DEBOUNCE_MS);
}

function tick() {
  if (document.visibilityState === "visible" && ui.tab === "connections") refreshConnections();
}

// ---------------------------------------------------------------------------------------------
// Connections view and actions
// ---------------------------------------------------------------------------------------------

let connectionsShape = "";

async function refreshConnections() {
  let data;
  try {
    data = await api("GET", "/_emu/connections");
  } catch (err) {
    byTestId("connections-tree").replaceChildren(el("p", { class: "error-text" }, err.message));
    return;
  }
  const shape = JSON.stringify(data, (k, v) => (k === "ageMs" ? undefined : v));
  if (shape === connectionsShape) return updateAges(data);
  connectionsShape = shape;
  const hubs = data.hubs ?? [];
  if (!byTestId("action-hub").value && hubs.length) byTestId("action-hub").value = hubs[0].hub;
  byTestId("connections-tree").replaceChildren(
    el("p", { class: "note" }, `${data.connections} connection(s)`),
    ...hubs.map(hubBlock));
}

function updateAges(data) {
  for (const hub of data.hubs ?? []) {
    for (const c of hub.connections) {
      const cell = document.querySelector(`[data-age="${CSS.escape(c.connectionId)}"]`);
      if (cell) cell.textContent = fmtAge(c.ageMs);
    }
  }
}

function fmtAge(ms) {
  if (typeof ms !== "number") return "";
  const s = Math.floor(ms / 1000);
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${s % 60}s` : `${Math.floor(s / 3600)}h${Math.floor(s / 60) % 60}m`;
}

function hubBlock(hub) {
  return el("div", { class: "hub", testid: "hub", "data-hub": hub.hub },
    el("b", {}, `hub ${hub.hub}`), ` · ${hub.connections.length} connection(s)`,
    hub.connections.map((c) => connectionBlock(hub.hub, c)));
}

function connectionBlock(hub, c) {
  return el("div", { class: "conn", testid: "connection", "data-connection": c.connectionId },
    el("div", { class: "conn-head" },
      el("span", { class: "mono" }, c.connectionId),
      el("span", { class: "chip" }, c.transport ?? "?"),
      el("span", {}, `user ${c.userId ?? "—"}`),
      el("span", { class: "note", "data-age": c.connectionId }, fmtAge(c.ageMs)),
      el("span", { class: "spacer" }),
      el("button", { testid: "connection-close", class: "danger",
        onclick: () => runAction("close", { hub, connectionId: c.connectionId }) }, "Close")),
    (c.sockets ?? []).map((s) => socketBlock(hub, c, s)));
}

function socketBlock(hub, c, s) {
  const pick = () => fillActionForm({ hub, namespace: s.namespace, socketId: s.socketId, connectionId: c.connectionId });
  return el("div", { class: "sock", testid: "socket", "data-socket": s.socketId, "data-namespace": s.namespace },
    el("span", { class: "chip" }, s.namespace),
    el("a", { href: "#", class: "mono", title: "Follow this socket's conversation",
      onclick: (ev) => { ev.preventDefault(); pick(); setFilter("socket", s.socketId); } }, s.socketId),
    el("span", { testid: "socket-rooms", title: "rooms (besides the socket's own)" },
      (s.rooms ?? []).filter((r) => r !== s.socketId).map((r) => el("span", { class: "chip" }, r))),
    el("button", { testid: "socket-select", onclick: pick }, "Select"),
    el("button", { testid: "socket-disconnect", class: "danger",
      onclick: () => runAction("disconnect", { hub, namespace: s.namespace, socketId: s.socketId }) }, "Disconnect"));
}

/** @param {{hub?: string, namespace?: string, socketId?: string, connectionId?: string}} target */
function fillActionForm({ hub, namespace, socketId, connectionId }) {
  if (hub) byTestId("action-hub").value = hub;
  if (namespace) byTestId("action-namespace").value = namespace;
  if (socketId) byTestId("action-socket").value = socketId;
  if (connectionId) byTestId("action-connection").value = connectionId;
}

function actionForm() {
  const v = (id) => byTestId(id).value.trim();
  return {
    hub: v("action-hub"), namespace: v("action-namespace") || "/", socketId: v("action-socket"),
    connectionId: v("action-connection"), to: v("action-to"), room: v("action-room"),
    event: v("action-event"), args: v("action-args") || "[]",
  };
}

function emitBody(f) {
  const args = JSON.parse(f.args);
  if (!Array.isArray(args)) throw new Error("args must be a JSON array");
  const body = { hub: f.hub, to: f.to, namespace: f.namespace, event: f.event, args };
  if (f.to === "socket") body.socketId = f.socketId;
  if (f.to === "room") body.room = f.room;
  return body;
}

/** Builds the body of an action from the form and runs it. */
function formAction(name) {
  const f = actionForm();
  let body;
  try {
    if (name === "emit") body = emitBody(f);
    else if (name === "join" || name === "leave") body = { hub: f.hub, namespace: f.namespace, socketId: f.socketId, room: f.room };
    else if (name === "disconnect") body = { hub: f.hub, namespace: f.namespace, socketId: f.socketId };
    else body = { hub: f.hub, connectionId: f.connectionId };
  } catch (err) {
    return showActionResult(`${name}: ${err.message}`, true);
  }
  runAction(name, body);
}

async function runAction(name, body) {
  try {
    const r = await api("POST", `/_emu/actions/${name}`, body);
    showActionResult(`${name}: ${JSON.stringify(r)}`, false);
  } catch (err) {
    showActionResult(`${name}: ${err.message}`, true);
  }
  refreshConnections();
}

function showActionResult(text, bad) {
  const out = byTestId("action-result");
  out.textContent = text;
  out.className = bad ? "error-text" : "note";
  out.dataset.state = bad ? "error" : "ok";
}

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

async function refreshFaults() {
  const list = byTestId("fault-list");
  try {
    const data = await api("GET", "/_emu/faults");
    const faults = data.faults ?? [];
    list.replaceChildren(...(faults.length ? faults.map(faultRow)
      : [el("p", { class: "note" }, "No fault rules. Add one, e.g. event=connect,status=500")]));
  } catch (err) {
    list.replaceChildren(el("p", { class: "error-text" }, err.message));
  }
}

function faultRow(rule) {
  return el("div", { class: "list-row", testid: "fault", "data-rule": rule },
    el("span", { class: "mono grow" }, rule),
    el("button", { testid: "fault-remove", class: "danger", onclick: () => faultCall("DELETE", `/_emu/faults?rule=${encodeURIComponent(rule)}`) }, "Remove"));
}

async function faultCall(method, path, body) {
  const out = byTestId("fault-result");
  try {
    const r = await api(method, path, body);
    out.textContent = r && r.rule ? `added ${r.rule}` : "done";
    out.className = "note";
    out.dataset.state = "ok";
  } catch (err) {
    out.textContent = err.message;
    out.className = "error-text";
    out.dataset.state = "error";
  }
  await refreshFaults();
}

function addFault() {
  const rule = byTestId("fault-input").value.trim();
  if (!rule) return;
  faultCall("POST", "/_emu/faults", { rule }).then(() => {
    if (byTestId("fault-result").dataset.state === "ok") byTestId("fault-input").value = "";
  });
}

// ---------------------------------------------------------------------------------------------
// Lint
// ---------------------------------------------------------------------------------------------

async function refreshLint() {
  let data;
  try {
    data = await api("GET", "/_emu/lint");
  } catch (err) {
    byTestId("lint-list").replaceChildren(el("p", { class: "error-text" }, err.message));
    return;
  }
  byTestId("lint-total").textContent = data.total ? `(${data.total})` : "";
  const rules = Object.entries(data.rules ?? {});
  byTestId("lint-list").replaceChildren(...(rules.length ? rules.map(([rule, r]) => lintRow(rule, r))
    : [el("p", { class: "note" }, "No findings.")]));
}

function lintRow(rule, r) {
  return el("div", { class: "list-row", testid: "lint-rule", "data-rule": rule },
    el("div", { class: "grow" },
      el("b", { class: "mono" }, rule), " ", el("span", { class: "chip", testid: "lint-count" }, `×${r.count}`),
      " ", el("span", { class: "note" }, r.section ?? ""),
      el("div", {}, r.message ?? ""),
      el("div", {}, (r.seqs ?? []).map((seq) => el("a", { href: "#", testid: "lint-seq", "data-seq": seq,
        onclick: (ev) => { ev.preventDefault(); select(seq); } }, `#${seq}`)).flatMap((a) => [a, " "]))));
}

// ---------------------------------------------------------------------------------------------
// Stream and start-up
// ---------------------------------------------------------------------------------------------

function connectStream() {
  const status = byTestId("stream-status");
  const source = new EventSource(`/_emu/events?after=${model.lastSeq}`);
  let lost = false;
  source.onopen = () => {
    status.textContent = "live";
    status.className = "status live";
    if (lost) checkRestart(source);
  };
  source.onerror = () => {
    lost = true;
    status.textContent = "reconnecting…";
    status.className = "status down";
  };
  source.onmessage = (msg) => {
    try { ingest(JSON.parse(msg.data), msg.data.length); } catch (err) { console.warn("bad entry", err); }
  };
  source.addEventListener("dropped", (msg) => {
    try { model.dropped += JSON.parse(msg.data).dropped ?? 0; } catch { /* ignore */ }
    scheduleRender();
  });
}

/**
 * After a reconnect: a server whose newest entry is older than ours was restarted (its numbers
 * start again at 1), so the page starts over with its whole history.
 */
async function checkRestart(source) {
  try {
    const s = await api("GET", "/_emu/status");
    if (s.ring && s.ring.lastSeq < model.lastSeq) {
      source.close();
      clearModel();
      model.lastSeq = 0;
      connectStream();
    }
  } catch { /* the stream's own retry goes on */ }
}

async function loadStatus() {
  try {
    const s = await api("GET", "/_emu/status");
    byTestId("server-info").textContent = `sio-emu ${s.version} · ${s.endpoint} · hubs ${(s.hubs ?? []).join(", ") || "any"}`;
    if (!byTestId("action-hub").value && s.hubs?.length) byTestId("action-hub").value = s.hubs[0];
  } catch { /* the status line is optional */ }
}

function wire() {
  const kind = byTestId("filter-kind");
  for (const k of KINDS) kind.append(el("option", { value: k }, k));
  for (const input of /** @type {NodeListOf<HTMLInputElement>} */ (document.querySelectorAll("[data-filter]"))) {
    input.addEventListener(input.type === "checkbox" || input.tagName === "SELECT" ? "change" : "input", onFiltersChanged);
  }
  byTestId("filter-reset").addEventListener("click", resetFilters);
  byTestId("pause").addEventListener("click", togglePause);
  byTestId("clear").addEventListener("click", clearModel);
  ui.viewport = byTestId("timeline");
  ui.spacer = $(".spacer-rows", ui.viewport);
  ui.layer = $(".rows-layer", ui.viewport);
  ui.viewport.addEventListener("scroll", onScroll, { passive: true });
  new ResizeObserver(onResize).observe(ui.viewport);
  onResize();
  for (const b of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll("[data-tab]"))) b.addEventListener("click", () => switchTab(b.dataset.tab));
  for (const name of ["emit", "join", "leave", "disconnect", "close"]) {
    byTestId(`action-${name}`).addEventListener("click", () => formAction(name));
  }
  byTestId("fault-add").addEventListener("click", addFault);
  byTestId("fault-input").addEventListener("keydown", (e) => { if (e.key === "Enter") addFault(); });
  byTestId("fault-clear").addEventListener("click", () => faultCall("DELETE", "/_emu/faults"));
  setInterval(tick, CONNECTIONS_EVERY_MS);
}

wire();
readFilters();
loadStatus();
refreshLint();
connectStream();
