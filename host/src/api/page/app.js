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

function state(s) { return el("span", { class: "state " + s, "data-state": s }, s); }
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
  "CLEARED", "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "REJECTED", "EXPIRED"];

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
  main.replaceChildren(el("h1", {}, "Runways"), filters, counts,
    el("div", { class: "scroll" }, el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "Runway"), el("th", {}, "State"), el("th", {}, "Agent"),
        el("th", { class: "hide-narrow" }, "Datasets"), el("th", {}, "Attempts"), el("th", { class: "hide-narrow" }, "Where it stands"))),
      body)),
    el("p", { class: "muted hide-narrow", id: "legend" }, "Datasets: E = exclusive lock (one writer), S = shared lock (readers alongside each other)."));
  async function refresh() {
    const listed = await api("/api/runways");
    const shown = listed.runways.filter((r) =>
      (!agent || r.agent === agent) && (!only || r.state === only) &&
      (!dataset || Object.keys(r.manifest.datasets).includes(dataset)) &&
      (!label || labels(r).includes(label)));
    const n = {};
    for (const r of shown) n[r.state] = (n[r.state] || 0) + 1;
    counts.replaceChildren(...STATES.filter((s) => n[s]).map((s) => el("span", {}, state(s), " ", n[s])));
    body.replaceChildren(...shown.map((r) => el("tr", { "data-runway": r.id },
      el("td", {}, runwayLink(r.id), labels(r).map((l) => [" ", el("span", { class: "muted mono" }, l)]),
        r.parent ? el("div", { class: "muted" }, "delegated by ", runwayLink(r.parent)) : null),
      el("td", {}, state(r.state)), el("td", {}, r.agent),
      el("td", { class: "hide-narrow mono" }, Object.entries(r.manifest.datasets).map(([d, m], i) =>
        [i ? ", " : "", d + " ", el("abbr", { title: m }, m[0].toUpperCase())])),
      el("td", {}, r.attempts), el("td", { class: "hide-narrow" }, r.reason || r.note))));
  }
  await refresh();
  follow("backlog=0", debounce(() => refresh().catch(failure), 200));
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
  if (!["SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "REJECTED", "EXPIRED"].includes(r.state) && may("control")) {
    actions.append(el("button", { class: "danger", onclick: () => post(`/api/runways/${encodeURIComponent(r.id)}/cancel`).then(() => runwayPage(id), failure) }, "Cancel"));
  }
  const records = el("tbody", { id: "records" });
  const tree = el("section", { id: "tree", hidden: true });
  main.replaceChildren(
    el("h1", {}, "Runway ", r.id, " ", state(r.state)),
    r.reason ? el("p", { class: "error" }, r.reason) : el("p", { class: "muted" }, r.note),
    actions,
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
      el("td", {}, x.agent), el("td", {}, state(x.state)),
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
