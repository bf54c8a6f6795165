// Runway status page: plain JavaScript, no dependencies, served from the
// binary. Every figure comes from the API with the caller's bearer token;
// live updates come from /api/events, read with fetch so the token goes in
// a header. Text from the server is only ever set as text, never as markup.
//
// The token is kept in sessionStorage (never written to disk; gone when the
// tab closes), and handed to the other open tabs of this page over a
// BroadcastChannel (same origin only): a tab opened next asks the open ones
// for it instead of asking the person again. Sign out signs every tab out.
"use strict";

const TOKEN = "runway-token";
const main = document.getElementById("main");
let me = null;
// The live streams this page follows, stopped on sign-out.
const streams = [];
const tabs = typeof BroadcastChannel === "function" ? new BroadcastChannel("runway-token") : null;
if (tabs) tabs.onmessage = (e) => {
  const m = e.data || {};
  const mine = sessionStorage.getItem(TOKEN);
  if (m.kind === "ask" && me && mine) tabs.postMessage({ kind: "token", token: mine });
  else if (m.kind === "token" && !me && !mine && typeof m.token === "string") {
    sessionStorage.setItem(TOKEN, m.token);
    start();
  } else if (m.kind === "sign-out" && me) signedOut("Signed out in another tab.");
};

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, "");
    else e.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const SVG_NS = "http://www.w3.org/2000/svg";

// An SVG element, as el() makes HTML ones: text only ever as text.
function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function state(s) { return el("span", { class: "state " + s, "data-state": s }, s); }

// What a colour means, in words.
const TONES = { ok: "succeeded", bad: "failed", wait: "waiting", active: "flying", queued: "queued", skipped: "skipped" };

// Which colour a state is drawn in.
function tone(s) {
  if (s === "SUCCEEDED") return "ok";
  if (s === "SKIPPED") return "skipped";
  if (s === "CLEARED" || s === "RUNNING") return "active";
  if (s === "QUEUED") return "queued";
  if (s.startsWith("WAITING_")) return "wait";
  return "bad";
}

// `text` cut to `n` characters (with an ellipsis).
function short(text, n) {
  text = String(text);
  return text.length > n ? text.slice(0, Math.max(1, n - 1)) + "\u2026" : text;
}

// A time as the page says it: UTC, to the second (with the date when it
// is not today's).
function clock(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const day = d.toISOString().slice(0, 10);
  const time = d.toISOString().slice(11, 19);
  return day === new Date().toISOString().slice(0, 10) ? time : `${day.slice(5)} ${time}`;
}

// A length of time in words a person reads at a glance.
function duration(ms) {
  if (ms === null || ms === undefined || !isFinite(ms)) return "";
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(Math.floor(s % 60)).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

// A run's start, end and duration (a run in flight: so far).
function span(r) {
  const start = r.started_at ? Date.parse(r.started_at) : null;
  const end = r.ended_at ? Date.parse(r.ended_at) : null;
  return {
    start: r.started_at ? clock(r.started_at) : "",
    end: r.ended_at ? clock(r.ended_at) : (r.started_at ? "in flight" : ""),
    duration: start !== null ? duration((end !== null ? end : Date.now()) - start) : "",
  };
}

// A run's start, end and duration as table cells.
function spanCells(r) {
  const s = span(r);
  return [el("td", { class: "mono t-start", title: r.started_at || "not started" }, s.start || "\u2014"),
    el("td", { class: "mono t-end hide-narrow", title: r.ended_at || "" }, s.end || "\u2014"),
    el("td", { class: "mono t-duration" }, s.duration || "\u2014")];
}

const ENDED = ["SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "REJECTED", "EXPIRED", "SKIPPED", "BUDGET_EXHAUSTED"];
function runwayLink(id) { return el("a", { href: "/runways/" + encodeURIComponent(id) }, id); }
function may(right) { return me && me.rights.includes(right); }

class Unauthorized extends Error {}

async function api(path, options) {
  const headers = { Authorization: "Bearer " + sessionStorage.getItem(TOKEN) };
  if (options && options.body) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { ...(options || {}), headers });
  if (res.status === 401) throw new Unauthorized();
  const type = res.headers.get("content-type") || "";
  const body = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) throw new Error((body && body.error) || res.statusText);
  return body;
}

// What `path` answers, or null when this server has no such route (404)
// or the caller may not ask it: the page shows a panel only when it can.
async function optional(path) {
  try { return await api(path); } catch (e) {
    if (e instanceof Unauthorized) throw e;
    return null;
  }
}

function post(path, body) {
  return api(path, { method: "POST", body: JSON.stringify(body || {}) });
}

// Follows /api/events (server-sent events over fetch), resuming after the
// last event seen; calls onEvent(kind, record) for each.
function follow(query, onEvent) {
  let last = null;
  let stopped = false;
  const controller = new AbortController();
  async function run() {
    while (!stopped) {
      try {
        const headers = { Authorization: "Bearer " + sessionStorage.getItem(TOKEN) };
        if (last !== null) headers["Last-Event-ID"] = String(last);
        const res = await fetch("/api/events?" + query, { headers, signal: controller.signal });
        if (res.status === 401) { signOut(); return; }
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += decoder.decode(value, { stream: true });
          let at;
          while ((at = buf.indexOf("\n\n")) >= 0) {
            const chunk = buf.slice(0, at);
            buf = buf.slice(at + 2);
            let kind = "message", id = null, data = "";
            for (const line of chunk.split("\n")) {
              if (line.startsWith("event:")) kind = line.slice(6).trim();
              else if (line.startsWith("id:")) id = line.slice(3).trim();
              else if (line.startsWith("data:")) data += line.slice(5).trimStart();
            }
            if (!data) continue;
            if (id !== null) last = Number(id);
            onEvent(kind, JSON.parse(data));
          }
        }
      } catch (e) {
        if (stopped) return;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const stop = () => { stopped = true; controller.abort(); };
  // A page left behind (kept in the back/forward cache) must not keep its
  // stream: a browser opens at most six connections to a server, and each
  // page visited would hold one until every request hangs.
  window.addEventListener("pagehide", stop);
  streams.push(stop);
  run();
  return stop;
}

// A page brought back from the back/forward cache lost its streams: load
// it anew.
window.addEventListener("pageshow", (e) => { if (e.persisted) location.reload(); });

function debounce(f, ms) {
  let t = null;
  return () => { clearTimeout(t); t = setTimeout(f, ms); };
}

function signOut() {
  signedOut("That token was refused; sign in again.");
}

// Forgets this tab's token and stops its streams.
function signedOut(why) {
  sessionStorage.removeItem(TOKEN);
  me = null;
  while (streams.length) streams.pop()();
  document.getElementById("waiting-count").textContent = "";
  login(why);
}

function login(why) {
  document.getElementById("who").textContent = "";
  const input = el("input", { type: "password", id: "token", name: "token", required: true,
    autocomplete: "off", "aria-label": "API token", size: 40 });
  const form = el("form", { class: "inline", id: "login", onsubmit: (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN, input.value.trim());
    start();
  } }, el("label", { for: "token" }, "Token"), input, el("button", { type: "submit" }, "Sign in"));
  main.replaceChildren(el("h1", {}, "Sign in"),
    why ? el("p", { class: "error", role: "alert" }, why) : null,
    el("p", { class: "muted" }, "Paste an API token: the admin's from runway-serve.token, or one from `runway token add`."),
    el("p", { class: "muted", id: "token-kept" }, "The token stays in this browser's memory for this page only " +
      "(sessionStorage, never written to disk) and is forgotten when its last tab closes. " +
      "Tabs of this page opened meanwhile are signed in with it; Sign out signs them all out."),
    form);
  input.focus();
  // Another open tab may already be signed in.
  if (tabs && !why) tabs.postMessage({ kind: "ask" });
}

function failure(e) {
  if (e instanceof Unauthorized) return signOut();
  main.append(el("p", { class: "error", role: "alert" }, String(e.message || e)));
}

// --- pages -----------------------------------------------------------------

const STATES = ["QUEUED", "WAITING_DEPS", "WAITING_APPROVAL", "WAITING_TIME", "WAITING_LOCKS",
  "WAITING_BREAKER", "CLEARED", "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "REJECTED",
  "EXPIRED", "SKIPPED", "BUDGET_EXHAUSTED"];

async function board() {
  const q = new URLSearchParams(location.search);
  const agent = q.get("agent") || "", dataset = q.get("dataset") || "", only = q.get("state") || "";
  const label = q.get("label") || "";
  const select = el("select", { name: "state", id: "f-state", "aria-label": "State" },
    el("option", { value: "" }, "any state"),
    STATES.map((s) => el("option", { value: s, selected: s === only }, s)));
  const filters = el("form", { class: "inline", method: "get", action: "/" },
    el("input", { name: "agent", value: agent, placeholder: "agent", "aria-label": "Agent" }),
    el("input", { name: "dataset", value: dataset, placeholder: "dataset", "aria-label": "Dataset" }),
    el("input", { name: "label", value: label, placeholder: "label key=value", "aria-label": "Label" }),
    select, el("button", { type: "submit" }, "Filter"));
  const counts = el("div", { class: "counts", id: "counts" });
  const body = el("tbody", { id: "runways" });
  const panels = el("div", { class: "panels", id: "panels" });
  const COLUMNS = 9;
  main.replaceChildren(panels, el("h1", {}, "Runways"), filters, counts,
    el("div", { class: "scroll" }, el("table", { class: "board" }, runwayHead(), body)),
    el("p", { class: "muted hide-narrow", id: "legend" }, "Datasets: E = exclusive lock (one writer), S = shared lock (readers alongside each other). " +
      "Runways are grouped by the filing that filed them (a delegated runway with its tree's), newest first; a filing's link opens its graph and timeline."));
  // The filings listed once; those filed later learnt from the stream.
  const filed = await optional("/api/filings");
  const filings = filed ? filed.filings : [];
  async function refresh() {
    const listed = await api("/api/runways");
    const shown = listed.runways.filter((r) =>
      (!agent || r.agent === agent) && (!only || r.state === only) &&
      (!dataset || Object.keys(r.manifest.datasets).includes(dataset)) &&
      (!label || labels(r).includes(label)));
    const n = {};
    for (const r of shown) n[r.state] = (n[r.state] || 0) + 1;
    counts.replaceChildren(...STATES.filter((s) => n[s]).map((s) => el("span", {}, state(s), " ", n[s])));
    body.replaceChildren(...byFiling(shown, filings).flatMap((g) => [filingHead(g, COLUMNS),
      ...g.runways.map((r) => {
        const row = runwayRow(r);
        row.dataset.filing = g.filing ? g.filing.seq : "";
        return row;
      })]));
  }
  await Promise.all([refresh(), drawPanels(panels)]);
  const later = debounce(() => Promise.all([refresh(), drawPanels(panels)]).catch(failure), 200);
  follow("backlog=0", (kind, rec) => {
    if (filed) learnFiling(filings, rec);
    later();
  });
}

// Adds the filing a PLAN record `rec` (as the event stream sends it)
// says to `filings`.
function learnFiling(filings, rec) {
  if (rec.event !== "plan_filed" || filings.some((f) => f.seq === rec.seq)) return;
  filings.push({ seq: rec.seq, at: String(rec.time).replace(/(\.\d{3})\d+/, "$1"), by: rec.by,
    source: rec.source, digest: rec.digest, runways: rec.runways || [] });
}

// The board's columns.
function runwayHead() {
  return el("thead", {}, el("tr", {}, el("th", {}, "Runway"), el("th", {}, "State"), el("th", {}, "Agent"),
    el("th", { class: "hide-narrow" }, "Datasets"), el("th", { class: "hide-narrow" }, "Attempts"),
    el("th", {}, "Start"), el("th", { class: "hide-narrow" }, "End"), el("th", {}, "Took"),
    el("th", { class: "hide-narrow" }, "Where it stands")));
}

// One runway's row on the board (and on its filing's page).
function runwayRow(r) {
  return el("tr", { "data-runway": r.id },
    el("td", {}, runwayLink(r.id), labels(r).map((l) => [" ", el("span", { class: "muted mono" }, l)]),
      r.parent ? el("div", { class: "muted" }, "delegated by ", runwayLink(r.parent)) : null,
      r.when ? el("div", { class: "muted mono" }, "when " + short(r.when, 60)) : null),
    el("td", {}, state(r.state)), el("td", {}, r.agent),
    el("td", { class: "hide-narrow mono" }, Object.entries(r.manifest.datasets).map(([d, m], i) =>
      [i ? ", " : "", d + " ", el("abbr", { title: m }, m[0].toUpperCase())])),
    el("td", { class: "hide-narrow" }, r.attempts), spanCells(r),
    el("td", { class: "hide-narrow" }, r.reason || r.note));
}

// `runways` grouped by the filing that filed them (a delegated runway
// with its tree's root), newest filing first; those of filings no longer
// listed (or filed otherwise) last.
function byFiling(runways, filings) {
  const of = new Map();
  for (const f of filings) for (const id of f.runways) of.set(id, f);
  const groups = new Map();
  for (const r of runways) {
    const f = of.get(r.id) || (r.root && of.get(r.root)) || null;
    const key = f ? f.seq : -1;
    if (!groups.has(key)) groups.set(key, { filing: f, runways: [] });
    groups.get(key).runways.push(r);
  }
  return [...groups.values()].sort((a, b) => (b.filing ? b.filing.seq : -1) - (a.filing ? a.filing.seq : -1));
}

// When a group of runs started and ended, and how long it has taken.
function groupSpan(runs) {
  const starts = runs.map((r) => r.started_at).filter((x) => x).map(Date.parse);
  const ends = runs.map((r) => r.ended_at).filter((x) => x).map(Date.parse);
  if (!starts.length) return null;
  const start = Math.min(...starts);
  const done = runs.every((r) => r.ended_at);
  const end = done && ends.length ? Math.max(...ends) : null;
  return { start, end, took: (end !== null ? end : Date.now()) - start };
}

// A filing's head row on the board: who filed it, from where, when; how
// far it has come; a link to its graph and timeline.
function filingHead(g, columns) {
  const f = g.filing;
  const t = groupSpan(g.runways);
  const tones = {};
  for (const r of g.runways) tones[tone(r.state)] = (tones[tone(r.state)] || 0) + 1;
  return el("tr", { class: "filing", "data-filing": f ? f.seq : "" }, el("th", { colspan: columns, scope: "rowgroup" },
    f ? [el("a", { href: "/filings/" + f.seq, class: "filing-link" }, `Filing #${f.seq}`),
      el("span", { class: "filing-who" }, ` by ${f.by}, ${f.source}, ${clock(f.at)}`)]
      : el("span", {}, "Filed before the filings listed, or by a run"),
    t ? el("span", { class: "filing-span mono" }, ` ${clock(new Date(t.start).toISOString())} \u2192 ${t.end !== null ? clock(new Date(t.end).toISOString()) : "now"} \u00b7 ${duration(t.took)}`) : null,
    el("span", { class: "pills" }, Object.entries(tones).map(([k, v]) => el("span", { class: "pill tone-" + k }, `${v} ${TONES[k]}`)))));
}

// The panels other parts of the server answer for: upcoming firings of
// schedules and triggers, and agents' health. Each shown only when its
// endpoint answers.
async function drawPanels(into) {
  const [triggers, agents] = await Promise.all([optional("/api/triggers"), optional("/api/agents")]);
  const list = (x) => Array.isArray(x) ? x : (x && Array.isArray(x.triggers) ? x.triggers : (x && Array.isArray(x.agents) ? x.agents : null));
  const t = list(triggers), a = list(agents);
  into.replaceChildren(...[t ? triggersPanel(t) : null, a ? agentsPanel(a) : null].filter((x) => x));
  into.hidden = !t && !a;
}

// Upcoming firings: each trigger, what it fires on, and when next.
function triggersPanel(triggers) {
  const rows = triggers.slice(0, 50).map((t) => {
    const next = (t.next || []).slice(0, 3);
    return el("tr", { "data-trigger": t.id },
      el("td", {}, el("span", { class: "kind-badge " + t.kind }, t.kind), " ", el("span", { class: "mono" }, t.id),
        el("div", { class: "muted mono" }, short(describeOn(t.on), 60))),
      el("td", {}, el("span", { class: "badge " + (t.state === "paused" ? "paused" : "active") }, t.state)),
      el("td", { class: "mono" }, next.length ? next.map((n) => el("div", { title: n }, clock(n), el("span", { class: "muted" }, " " + fromNow(n)))) : "\u2014"),
      el("td", { class: "hide-narrow mono" }, `${t.fired || 0} fired`, t.last_fired ? el("div", { class: "muted" }, "last " + clock(t.last_fired)) : null));
  });
  return el("section", { class: "panel", id: "triggers-panel" }, el("h2", {}, "Upcoming firings"),
    rows.length ? el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Trigger"), el("th", {}, "State"), el("th", {}, "Next"), el("th", { class: "hide-narrow" }, "Fired"))),
      el("tbody", {}, rows)) : el("p", { class: "muted" }, "No schedules or triggers filed."));
}

// What a trigger fires on, in words: `schedule 0 1 * * *, zone UTC`.
function describeOn(on) {
  if (!on || typeof on !== "object") return String(on === undefined ? "" : on);
  return Object.entries(on).map(([k, v]) => `${k} ${typeof v === "string" ? v : JSON.stringify(v)}`).join(", ");
}

// How long until (or since) `iso`, in words.
function fromNow(iso) {
  const d = Date.parse(iso) - Date.now();
  return d >= 0 ? "in " + duration(d) : duration(-d) + " ago";
}

// Agents' health: runs, success ratio, run times, breaker.
function agentsPanel(agents) {
  const rows = agents.slice(0, 50).map((a) => {
    const ratio = typeof a.success_ratio === "number" ? a.success_ratio : null;
    const bar = el("span", { class: "ratio" }, el("span", { class: "ratio-fill" }));
    if (ratio !== null) bar.firstChild.style.width = Math.round(Math.max(0, Math.min(1, ratio)) * 100) + "%";
    return el("tr", { "data-agent": a.agent },
      el("td", {}, a.agent, a.in_flight ? el("span", { class: "muted" }, ` (${a.in_flight} flying)`) : null),
      el("td", {}, el("span", { class: "badge breaker " + (a.breaker || "closed"), title: a.breaker_until ? "until " + a.breaker_until : "" },
        "breaker " + (a.breaker || "closed"))),
      el("td", { class: "mono" }, bar, ratio !== null ? ` ${Math.round(ratio * 100)}%` : " \u2014", el("div", { class: "muted" }, `${a.runs || 0} runs, ${a.failed || 0} failed`)),
      el("td", { class: "mono hide-narrow" }, `p50 ${duration(a.p50_ms)}`, el("div", {}, `p95 ${duration(a.p95_ms)}`)),
      el("td", { class: "hide-narrow" }, lastFailure(a.last_failure)));
  });
  return el("section", { class: "panel", id: "agents-panel" }, el("h2", {}, "Agents"),
    el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Agent"), el("th", {}, "Breaker"), el("th", {}, "Success"),
      el("th", { class: "hide-narrow" }, "Run time"), el("th", { class: "hide-narrow" }, "Last failure"))), el("tbody", {}, rows)));
}

// An agent's last failure: its runway (a link), when, and why.
function lastFailure(f) {
  if (!f || typeof f !== "object") return el("span", { class: "muted" }, "none");
  return el("span", {}, el("a", { href: "/runways/" + encodeURIComponent(f.runway), class: "mono" }, f.runway),
    f.at ? el("span", { class: "muted" }, " " + clock(f.at)) : null, el("div", {}, short(String(f.reason || ""), 80)));
}

// A runway's labels as key=value, sorted.
function labels(r) {
  return Object.entries(r.manifest.labels || {}).map(([k, v]) => `${k}=${v}`);
}

async function runwayPage(id) {
  const r = await api("/api/runways/" + encodeURIComponent(id));
  const board = await api("/api/locks");
  const plugin = (await api("/api/plugins")).plugins.find((p) => p.name === r.agent);
  const m = r.manifest;
  const allowed = m.window_secs ? `${m.window_secs} s, set by the manifest`
    : `${plugin ? plugin.limits.window_secs + " s, " : ""}the window plugin ${r.agent} is granted (the manifest sets none)`;
  const places = [];
  for (const d of board.datasets) {
    const w = d.waiting.find((x) => x.runway === r.id);
    if (w) places.push(el("li", {}, `waits for ${d.dataset} (${w.mode}): ${w.position} of ${d.waiting.length} in line`));
  }
  const actions = el("div", { id: "actions" });
  if (r.state === "WAITING_APPROVAL" && may("approve")) actions.append(approveForms(r, () => runwayPage(id)));
  if (!ENDED.includes(r.state) && may("control")) {
    actions.append(el("button", { class: "danger", onclick: () => post(`/api/runways/${encodeURIComponent(r.id)}/cancel`).then(() => runwayPage(id), failure) }, "Cancel"));
  }
  if (may("control")) actions.append(refileButton(r));
  const filed = await optional("/api/filings");
  const filing = filed && filed.filings.find((f) => f.runways.includes(r.id) || (r.root && f.runways.includes(r.root)));
  const t = span(r);
  const records = el("tbody", { id: "records" });
  const tree = el("section", { id: "tree", hidden: true });
  main.replaceChildren(
    el("h1", {}, "Runway ", r.id, " ", state(r.state)),
    r.reason ? el("p", { class: "error" }, r.reason) : el("p", { class: "muted" }, r.note),
    el("p", { id: "times", class: "times" },
      el("span", {}, "filed ", el("b", { class: "mono" }, clock(r.filed_at) || "\u2014")),
      el("span", {}, "started ", el("b", { class: "mono", id: "t-start" }, t.start || "not yet")),
      el("span", {}, "ended ", el("b", { class: "mono", id: "t-end" }, t.end || "not yet")),
      el("span", {}, "took ", el("b", { class: "mono", id: "t-duration" }, t.duration || "\u2014")),
      filing ? el("span", {}, "filed in ", el("a", { href: "/filings/" + filing.seq, id: "filing-link" },
        `filing #${filing.seq}`), ` by ${filing.by} (${filing.source})`) : null,
      r.when ? el("span", { class: "mono" }, "runs when " + r.when) : null),
    actions,
    el("div", { id: "budget-box" }, budgetView(r.budget, r.spent)),
    tree,
    el("h2", {}, "Manifest"),
    el("table", {}, el("tbody", {},
      [["agent", r.agent], ["action", m.action], ["datasets", Object.entries(m.datasets).map(([d, x]) => `${d} (${x})`).join(", ") || "none"],
       ["after", m.after.join(", ") || "none"], ["priority", m.priority], ["run time allowed", allowed],
       ["approval", m.approval || "none"], ["labels", labels(r).join(", ") || "none"],
       ["attempts allowed", m.attempts], ["attempts made", r.attempts],
       ["output digest", r.output_digest || "none"], ["approved by", r.approved_by || "nobody"]]
        .map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", { class: "mono" }, v))))),
    el("h2", {}, "Locks"),
    el("ul", { id: "locks-list" }, r.locks.map((l) => el("li", {}, r.locks_held
      ? `holds ${l.dataset} ${l.mode}, fencing token ${l.token}`
      : `held ${l.dataset} ${l.mode} with fencing token ${l.token} in its last attempt; no longer holds it`)), places,
      r.locks.length || places.length ? null : el("li", { class: "muted" }, "none held or waited for")),
    el("h2", {}, "Attempts"),
    attemptsView(r),
    el("h2", {}, "Input"),
    capped(r.input, "input", "No input."),
    el("h2", {}, "Output"),
    r.output !== null && r.output !== undefined ? capped(r.output, "output", "")
      : el("p", { class: "muted", id: "output" }, r.output_digest
        ? `Its output is not kept here (only a run's whose output others read is kept on the trail); its SHA-256 is ${r.output_digest}.`
        : "No output (yet)."),
    el("h2", {}, "Transitions"),
    el("div", { class: "scroll" }, el("table", {}, el("tbody", { id: "history" }, (r.history || []).map((t) => el("tr", {},
      el("td", { class: "mono" }, t.at), el("td", {}, state(t.state)), el("td", {}, t.reason, t.by ? ` (by ${t.by})` : "")))))),
    el("h2", {}, "Audit records"),
    el("div", { class: "scroll" }, el("table", {}, records)));
  await treeView(tree, r);
  follow("backlog=0&tree=" + encodeURIComponent(r.id), debounce(() =>
    api("/api/runways/" + encodeURIComponent(r.id)).then((now) => treeView(tree, now)).catch(failure), 200));
  follow("backlog=5000&runway=" + encodeURIComponent(r.id), (kind, rec) => {
    records.append(el("tr", {}, el("td", { class: "mono" }, "#" + rec.seq), el("td", { class: "mono" }, rec.time),
      el("td", {}, rec.event + (rec.to ? " " + rec.to : "") + (rec.call ? " " + rec.call : "")),
      el("td", {}, rec.reason || rec.key || rec.dataset || ""),
      el("td", {}, may("audit") ? proofLink(rec.seq) : null)));
  });
}

// Most characters of an input, output or log line shown inline.
const SHOWN_CHARS = 8192;
// Most log lines shown inline.
const SHOWN_LINES = 500;

// `text` in a <pre>, cut at SHOWN_CHARS (saying how much was left out).
function capped(text, id, none) {
  if (text === null || text === undefined || text === "") return el("p", { class: "muted", id }, none);
  let shown = String(text);
  try { shown = JSON.stringify(JSON.parse(shown), null, 2); } catch (e) { /* not JSON: as it is */ }
  const cut = shown.length > SHOWN_CHARS;
  return el("div", { id }, el("pre", { class: "blob" }, cut ? shown.slice(0, SHOWN_CHARS) : shown),
    cut ? el("p", { class: "muted" }, `The first ${SHOWN_CHARS} of ${shown.length} characters.`) : null);
}

// A run's attempts (each move to RUNNING starts one): when each started
// and ended, how long it took, how it ended and why — then each one's log
// lines and output inline, as this server kept them, so a retried run
// still shows why its failed attempts failed.
function attemptsView(r) {
  const tries = r.runs || [];
  const chart = drawGantt([r], Math.min(main.clientWidth || 640, 900));
  const took = (a) => duration((a.ended_at ? Date.parse(a.ended_at) : Date.now()) - Date.parse(a.started_at));
  const ended = (a) => a.state ? [state(a.state), a.reason ? " " + short(a.reason, 200) : ""] : "flying";
  return el("section", { id: "attempts" },
    chart ? el("div", { class: "chart", id: "runway-chart" }, chart) : null,
    tries.length ? el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "#"), el("th", {}, "Start"),
      el("th", { class: "hide-narrow" }, "End"), el("th", {}, "Took"), el("th", {}, "How it ended"))),
      el("tbody", {}, tries.map((a) => el("tr", { "data-attempt": a.attempt },
        el("td", {}, el("a", { href: "#attempt-" + a.attempt }, a.attempt)), el("td", { class: "mono" }, clock(a.started_at)),
        el("td", { class: "mono hide-narrow" }, a.ended_at ? clock(a.ended_at) : "in flight"),
        el("td", { class: "mono" }, took(a)), el("td", {}, ended(a))))))) :
      el("p", { class: "muted" }, "It has not flown."),
    tries.map((a) => attemptView(a, took(a), tries.length)));
}

// One attempt: its times and end, its log lines and its output.
function attemptView(a, took, of) {
  const lines = a.log.slice(0, SHOWN_LINES);
  const left = a.log.length - lines.length + (a.log_left_out || 0);
  let log;
  if (!a.kept) {
    log = el("p", { class: "muted log-none" }, !a.state ? "In flight: its log shows once it lands."
      : "No log kept here: it flew before this server started, or it is a middle attempt of many (the first and the latest are kept).");
  } else {
    log = [lines.length ? el("ol", { class: "log" }, lines.map((l) => el("li", {}, short(l, SHOWN_CHARS))))
      : el("p", { class: "muted log-none" }, "It logged nothing."),
      left > 0 ? el("p", { class: "muted" }, `${left} more log lines not kept.`) : null];
  }
  const output = !a.kept || a.output === null || a.output === undefined ? null
    : [el("h4", {}, `Output (${a.output_bytes} bytes)`), capped(a.output, null, "An empty output."),
      new TextEncoder().encode(a.output).length < a.output_bytes ? el("p", { class: "muted" }, `The first part; its SHA-256 is ${a.output_digest}.`) : null];
  return el("section", { class: "attempt " + (a.state ? "tone-" + tone(a.state) : "tone-active"), id: "attempt-" + a.attempt, "data-attempt": a.attempt },
    el("h3", {}, `Attempt ${a.attempt} of ${of} `, a.state ? state(a.state) : state("RUNNING"),
      el("span", { class: "muted mono" }, ` ${clock(a.started_at)} \u2192 ${a.ended_at ? clock(a.ended_at) : "in flight"}, ${took}`)),
    a.state && a.reason ? el("p", { class: "error" }, short(a.reason, SHOWN_CHARS)) : null,
    a.input_digest ? el("p", { class: "muted mono", title: "SHA-256 " + a.input_digest }, `handed the input shown below (SHA-256 ${a.input_digest.slice(0, 16)}\u2026)`) : null,
    log, output);
}

// Retry (a runway that failed or was stopped) or re-file (any other) as
// a new runway, for an operator: its new page once filed.
function refileButton(r) {
  const retry = ENDED.includes(r.state) && !["SUCCEEDED", "SKIPPED"].includes(r.state);
  const said = el("span", { class: "error", role: "alert" });
  const button = el("button", { id: "refile", title: "File its manifest again, as a new runway", onclick: async () => {
    button.disabled = true;
    try {
      const filed = await post(`/api/runways/${encodeURIComponent(r.id)}/refile`);
      location.assign("/runways/" + encodeURIComponent(filed.runways[0].id));
    } catch (e) {
      if (e instanceof Unauthorized) return signOut();
      said.textContent = e.message;
      button.disabled = false;
    }
  } }, retry ? "Retry as a new runway" : "Re-file");
  return el("span", { class: "refile" }, button, " ", said);
}

// Spend against budget: each budgeted figure as a bar (spent alone when
// there is no budget).
function budgetView(budget, spent) {
  const figures = (x) => (x && typeof x === "object") ? x : null;
  const b = figures(budget), s = figures(spent);
  if (!b && !s) return null;
  const keys = [...new Set([...Object.keys(b || {}), ...Object.keys(s || {})])]
    .filter((k) => typeof (b || {})[k] === "number" || typeof (s || {})[k] === "number");
  if (!keys.length) return null;
  const fmt = (k, v) => typeof v !== "number" ? "\u2014" : /ms$|wall/.test(k) ? duration(v) : v >= 1e6 ? v.toExponential(2) : String(v);
  const name = { wall_ms: "wall time", bytes: "bytes written" };
  return el("section", { class: "budget", id: "budget" }, el("h2", {}, b ? "Spend against budget" : "Spend"),
    el("table", {}, el("tbody", {}, keys.map((k) => {
      const cap = (b || {})[k], used = (s || {})[k] || 0;
      const bar = el("span", { class: "ratio" + (typeof cap === "number" && used >= cap ? " over" : "") }, el("span", { class: "ratio-fill" }));
      bar.firstChild.style.width = (typeof cap === "number" && cap > 0 ? Math.min(100, (used / cap) * 100) : 0) + "%";
      return el("tr", { "data-budget": k }, el("th", {}, name[k] || k), el("td", { class: "mono" }, typeof cap === "number" ? bar : null,
        ` ${fmt(k, used)}${typeof cap === "number" ? " of " + fmt(k, cap) : " spent"}`));
    }))));
}

// What a filing spent: each of its runways carries its filing's total
// (`spent`), so any one of them says it — never their sum.
function filingSpent(runs) {
  const r = runs.find((x) => x.spent && typeof x.spent === "object");
  return r ? r.spent : null;
}

// A filing's page: who filed it, its graph, its timeline, its runways;
// kept live.
async function filingPage(seq) {
  const expanded = new Set();
  const head = el("div", { id: "filing-head" });
  const budget = el("div", { id: "filing-budget" });
  const graphBox = el("div", { class: "scroll chart", id: "graph" });
  const ganttBox = el("div", { class: "chart", id: "timeline-chart" });
  const body = el("tbody", { id: "filing-runways" });
  main.replaceChildren(el("h1", {}, `Filing #${seq}`), head, budget,
    el("h2", {}, "Graph"), graphLegend(), graphBox,
    el("h2", { id: "timeline-title" }, "Timeline"), ganttLegend(), ganttBox,
    el("h2", {}, "Runways"), el("div", { class: "scroll" }, el("table", { class: "board" }, runwayHead(), body)));
  let top = [], below = new Map();
  const draw = () => graphBox.replaceChildren(drawGraph(top, below, expanded, toggle));
  const toggle = (id) => { if (!expanded.delete(id)) expanded.add(id); draw(); };
  const filed = await api("/api/filings");
  const f = filed.filings.find((x) => String(x.seq) === String(seq));
  async function refresh() {
    const listed = await api("/api/runways");
    if (!f) { head.replaceChildren(el("p", { class: "error" }, `No filing #${seq} among the last ones filed.`)); return; }
    const byId = new Map(listed.runways.map((r) => [r.id, r]));
    const ids = new Set(f.runways);
    top = f.runways.map((id) => byId.get(id)).filter((x) => x);
    below = new Map();
    for (const r of listed.runways) if (r.parent && ids.has(r.root || "")) {
      if (!below.has(r.parent)) below.set(r.parent, []);
      below.get(r.parent).push(r);
    }
    const members = [...top, ...[...below.values()].flat()];
    const t = groupSpan(members);
    const tones = {};
    for (const r of members) tones[tone(r.state)] = (tones[tone(r.state)] || 0) + 1;
    head.replaceChildren(el("p", { class: "times" },
      el("span", {}, "filed by ", el("b", {}, f.by)), el("span", {}, "from ", el("b", {}, f.source)),
      el("span", {}, "at ", el("b", { class: "mono" }, clock(f.at))),
      el("span", {}, `${top.length} runway${top.length === 1 ? "" : "s"}`, members.length > top.length ? ` (+${members.length - top.length} delegated)` : ""),
      t ? el("span", {}, "started ", el("b", { class: "mono" }, clock(new Date(t.start).toISOString()))) : null,
      t ? el("span", {}, "ended ", el("b", { class: "mono" }, t.end !== null ? clock(new Date(t.end).toISOString()) : "not yet")) : null,
      t ? el("span", {}, "took ", el("b", { class: "mono", id: "filing-took" }, duration(t.took))) : null,
      el("span", { class: "pills" }, Object.entries(tones).map(([k, v]) => el("span", { class: "pill tone-" + k }, `${v} ${TONES[k]}`)))));
    const planBudget = members.map((r) => r.budget).find((b) => b && typeof b === "object");
    budget.replaceChildren(...[budgetView(planBudget, filingSpent(members))].filter((x) => x));
    draw();
    // The timeline needs each run's history (the first 100 runs').
    const runs = await Promise.all(members.slice(0, 100).map((r) => api("/api/runways/" + encodeURIComponent(r.id))));
    const chart = drawGantt(runs, Math.max(300, Math.min(ganttBox.clientWidth || main.clientWidth, 1100)));
    ganttBox.replaceChildren(chart || el("p", { class: "muted" }, "Nothing has moved yet."));
    body.replaceChildren(...members.map(runwayRow));
  }
  await refresh();
  follow("backlog=0", debounce(() => refresh().catch(failure), 500));
}

// Most runways a tree view lists below a runway.
const TREE_ROWS = 500;

// Runway r's place in its delegation tree, drawn into `section`: who
// delegated it, how far its tree has come, and every runway delegated
// below it, each under its parent, with its state.
async function treeView(section, r) {
  const below = (r.children || []).length
    ? (await api("/api/runways?tree=" + encodeURIComponent(r.id))).runways : [];
  const kids = new Map();
  for (const x of below) if (x.parent) {
    if (!kids.has(x.parent)) kids.set(x.parent, []);
    kids.get(x.parent).push(x);
  }
  // Parents first, children in filing order (the list's order).
  const rows = [];
  const stack = (kids.get(r.id) || []).slice().reverse().map((x) => [x, 1]);
  while (stack.length && rows.length < TREE_ROWS) {
    const [x, level] = stack.pop();
    rows.push(el("tr", { "data-runway": x.id, "data-level": level },
      el("td", { class: "mono" }, "\u00a0\u00a0".repeat(level - 1) + (level > 1 ? "└ " : ""), runwayLink(x.id)),
      el("td", {}, x.agent), el("td", {}, state(x.state)), spanCells(x),
      el("td", { class: "hide-narrow" }, x.reason || x.note)));
    for (const k of (kids.get(x.id) || []).slice().reverse()) stack.push([k, level + 1]);
  }
  const p = r.progress;
  section.hidden = !r.parent && !r.handoff_from && !below.length && !p;
  // (replaceChildren would write a null out as "null".)
  section.replaceChildren(...[
    el("h2", {}, "Delegation tree"),
    r.parent ? el("p", { id: "tree-parent" }, "Delegated by ", runwayLink(r.parent),
      r.root && r.root !== r.parent ? [" in the tree of ", runwayLink(r.root)] : null,
      `, depth ${r.depth}.`) : null,
    r.handoff_from ? el("p", { id: "tree-from" }, "Took over from ", runwayLink(r.handoff_from),
      " (its hand-off).") : null,
    p ? el("p", { id: "tree-progress" },
      p.total ? el("progress", { max: p.total, value: p.done, "aria-label": "Progress" }) : null,
      ` ${p.done} of ${p.total} done`, p.message ? ": " + p.message : "") : null,
    rows.length ? el("div", { class: "scroll" }, el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "Delegated"), el("th", {}, "Agent"), el("th", {}, "State"),
        el("th", {}, "Start"), el("th", { class: "hide-narrow" }, "End"), el("th", {}, "Took"),
        el("th", { class: "hide-narrow" }, "Where it stands"))),
      el("tbody", { id: "tree-runways" }, rows))) : null,
    below.length - 1 > rows.length
      ? el("p", { class: "muted" }, `The first ${rows.length} of ${below.length - 1} runways below it are shown.`) : null,
  ].filter((x) => x));
}

function proofLink(seq) {
  return el("button", { class: "proof", onclick: async () => {
    try {
      const text = await api("/api/audit/proof/" + seq);
      const a = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/plain" })), download: `record-${seq}.proof` });
      document.body.append(a); a.click(); a.remove();
    } catch (e) { failure(e); }
  } }, "proof");
}

function approveForms(r, done) {
  const id = encodeURIComponent(r.id);
  const note = el("input", { name: "note", placeholder: "note (optional)", "aria-label": "Approval note" });
  const reason = el("input", { name: "reason", placeholder: "reason (required)", required: true, "aria-label": "Rejection reason" });
  const said = el("span", { class: "error", role: "alert" });
  const act = (path, body) => post(path, body).then(done, (e) => { said.textContent = e.message; });
  return el("div", { class: "approval", "data-runway": r.id },
    el("form", { class: "inline approve", onsubmit: (e) => { e.preventDefault(); act(`/api/runways/${id}/approve`, { note: note.value }); } },
      note, el("button", { type: "submit" }, "Approve " + r.id)),
    el("form", { class: "inline reject", onsubmit: (e) => { e.preventDefault(); act(`/api/runways/${id}/reject`, { reason: reason.value }); } },
      reason, el("button", { type: "submit", class: "danger" }, "Reject " + r.id)),
    said);
}

async function approvals() {
  const nothing = el("p", { class: "muted" }, "Nothing waits for approval.");
  const list = el("div", { id: "approvals" }, nothing);
  main.replaceChildren(el("h1", {}, "Waiting for approval"), list);
  // Sections are kept by runway id, so a note or reason being typed
  // survives other runways arriving or leaving.
  const sections = new Map();
  async function refresh() {
    const listed = await api("/api/runways?state=WAITING_APPROVAL");
    const waiting = new Set(listed.runways.map((r) => r.id));
    for (const [id, section] of sections) if (!waiting.has(id)) { section.remove(); sections.delete(id); }
    for (const r of listed.runways) if (!sections.has(r.id)) {
      const section = el("section", { "data-runway": r.id },
        el("h2", {}, runwayLink(r.id), " ", r.agent, " ", el("span", { class: "muted" }, "(role " + (r.manifest.approval || "approver") + ")")),
        may("approve") ? approveForms(r, refresh) : el("p", { class: "muted" }, "Your token may not approve."));
      sections.set(r.id, section);
      list.append(section);
    }
    nothing.hidden = sections.size > 0;
  }
  await refresh();
  follow("backlog=0", debounce(() => refresh().catch(failure), 200));
}

async function locks() {
  const body = el("tbody", { id: "locks" });
  main.replaceChildren(el("h1", {}, "Locks"), el("div", { class: "scroll" }, el("table", {},
    el("thead", {}, el("tr", {}, el("th", {}, "Dataset"), el("th", {}, "Held"), el("th", {}, "Holders (token)"), el("th", {}, "Waiting, in order"))), body)));
  async function refresh() {
    const b = await api("/api/locks");
    body.replaceChildren(...(b.datasets.length ? b.datasets.map((d) => el("tr", { "data-dataset": d.dataset },
      el("td", { class: "mono" }, d.dataset), el("td", {}, d.held || "free"),
      el("td", {}, d.holders.map((h) => el("div", {}, runwayLink(h.runway), h.token !== null ? ` (${h.token})` : ""))),
      el("td", {}, el("ol", {}, d.waiting.map((w) => el("li", {}, runwayLink(w.runway), " " + w.mode))))))
      : [el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No lock held or waited for."))]));
  }
  await refresh();
  follow("backlog=0", debounce(() => refresh().catch(failure), 200));
}

async function plugins() {
  const p = await api("/api/plugins");
  main.replaceChildren(el("h1", {}, "Plugins"), el("div", { class: "scroll" }, el("table", {},
    el("thead", {}, el("tr", {}, el("th", {}, "Agent"), el("th", {}, "Digest"), el("th", {}, "Signed by"), el("th", {}, "Grants"))),
    el("tbody", { id: "plugins" }, p.plugins.map((x) => el("tr", {},
      el("td", {}, x.name), el("td", { class: "mono" }, x.digest), el("td", {}, x.signed_by || "not checked"),
      el("td", { class: "mono" }, Object.entries(x.datasets).map(([d, m]) => `${d}: ${m}`).join(", ") || "no datasets",
        el("div", { class: "muted" }, `memory ${x.limits.memory_mib} MiB, window ${x.limits.window_secs} s, fuel ${x.limits.fuel}`))))))));
}

function audit() {
  const q = new URLSearchParams(location.search);
  const fields = ["dataset", "runway", "agent"];
  const form = el("form", { class: "inline", method: "get", action: "/audit" },
    fields.map((f) => el("input", { name: f, value: q.get(f) || "", placeholder: f, "aria-label": f })),
    el("button", { type: "submit" }, "Follow"));
  const list = el("ol", { class: "timeline", id: "timeline", "aria-live": "polite" });
  const what = fields.filter((f) => q.get(f)).map((f) => `${f} ${q.get(f)}`).join(", ") || "everything";
  main.replaceChildren(el("h1", {}, "Audit trail: ", what),
    may("audit") ? null : el("p", { class: "notice" }, "Your token may not read the audit trail: only runways' transitions are shown."),
    form, list);
  const query = new URLSearchParams();
  for (const f of fields) if (q.get(f)) query.set(f, q.get(f));
  query.set("backlog", "500");
  follow(query.toString(), (kind, r) => {
    const what = [r.event, r.to, r.call, r.key, r.mode, r.token !== undefined && r.token !== null ? "token " + r.token : null, r.reason]
      .filter((x) => x !== undefined && x !== null && x !== "").join(" ");
    list.append(el("li", { "data-seq": r.seq, "data-kind": kind },
      `#${r.seq} ${r.time} ${r.runway || "host"} ${r.agent} ${r.dataset ? "[" + r.dataset + "] " : ""}${what}`));
  });
}

// How many runways wait for approval, beside the Approvals link.
async function countWaiting() {
  try {
    const n = (await api("/api/runways?state=WAITING_APPROVAL")).runways.length;
    document.getElementById("waiting-count").textContent = ` (${n} waiting)`;
  } catch (e) { /* the page itself says what failed */ }
}

async function start() {
  if (!sessionStorage.getItem(TOKEN)) return login();
  try {
    me = await api("/api/server");
  } catch (e) {
    if (e instanceof Unauthorized) return signOut();
    return failure(e);
  }
  document.getElementById("who").replaceChildren(`${me.name} (${me.roles.join(", ")}) `,
    el("button", { id: "sign-out", onclick: () => {
      if (tabs) tabs.postMessage({ kind: "sign-out" });
      signedOut();
    } }, "Sign out"));
  countWaiting();
  follow("backlog=0", debounce(countWaiting, 300));
  const banner = document.getElementById("banner");
  const warnings = [];
  if (me.insecure) warnings.push("INSECURE: this server listens beyond loopback without TLS; tokens and data cross the network in the clear.");
  if (me.paused) warnings.push("Clearing is paused: runways in the air land, no new ones take off.");
  banner.hidden = warnings.length === 0;
  banner.textContent = warnings.join(" ");
  const path = location.pathname;
  try {
    if (path.startsWith("/runways/")) await runwayPage(decodeURIComponent(path.slice(9)));
    else if (path.startsWith("/filings/")) await filingPage(decodeURIComponent(path.slice(9)));
    else if (path === "/approvals") await approvals();
    else if (path === "/locks") await locks();
    else if (path === "/plugins") await plugins();
    else if (path === "/audit") audit();
    else await board();
  } catch (e) {
    failure(e);
  }
}

start();
