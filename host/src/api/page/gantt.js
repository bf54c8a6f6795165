// A timeline (Gantt) of runs, drawn as SVG by hand: one lane per dataset
// (a run holding two appears in both), one row per run, its history laid
// on a shared time axis — waiting for locks (amber, hatched), other waits
// (grey), cleared (blue), flying (coloured by how the attempt ended) — so
// who waited for whom is seen at a glance. Loaded before app.js, whose
// helpers (svg, tone, short, clock, duration) it calls when it draws.
"use strict";

const ROW_H = 22, LANE_HEAD = 22, AXIS_H = 24;

// What a stretch of time in `state` is drawn as.
function stretch(state) {
  if (state === "WAITING_LOCKS") return "wait-locks";
  if (state === "RUNNING") return "flight";
  if (state === "CLEARED") return "cleared";
  if (state === "QUEUED" || state.startsWith("WAITING_")) return "wait";
  return null;
}

// A run's stretches from its history: [{kind, from, to, state, then}].
function stretches(r, now) {
  const h = r.history || [];
  const out = [];
  for (let i = 0; i < h.length; i++) {
    const kind = stretch(h[i].state);
    if (!kind) continue;
    const from = Date.parse(h[i].at);
    const to = i + 1 < h.length ? Date.parse(h[i + 1].at) : now;
    out.push({ kind, from, to, state: h[i].state, then: i + 1 < h.length ? h[i + 1].state : null });
  }
  return out;
}

// A step between ticks that puts at most `most` ticks on `span` ms.
function tickStep(span, most) {
  const steps = [1, 2, 5, 10, 20, 50, 100, 250, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5,
    18e5, 36e5, 72e5, 216e5, 432e5, 864e5];
  return steps.find((s) => span / s <= most) || 864e5 * Math.ceil(span / 864e5 / most);
}

// The timeline of `runs` (runway views with their histories), `width`
// pixels wide; null when none has a history.
function drawGantt(runs, width) {
  const now = Date.now();
  let t0 = Infinity, t1 = -Infinity;
  for (const r of runs) for (const t of r.history || []) {
    const at = Date.parse(t.at);
    t0 = Math.min(t0, at); t1 = Math.max(t1, at);
  }
  if (!isFinite(t0)) return null;
  if (runs.some((r) => !r.ended_at)) t1 = Math.max(t1, now);
  if (t1 - t0 < 50) t1 = t0 + 50;
  const lanes = new Map();
  for (const r of runs) {
    const sets = Object.keys((r.manifest && r.manifest.datasets) || {});
    for (const d of sets.length ? sets : [""]) {
      if (!lanes.has(d)) lanes.set(d, []);
      lanes.get(d).push(r);
    }
  }
  const names = [...lanes.keys()].sort((a, b) => (a === "") - (b === "") || a.localeCompare(b));
  const label = Math.round(Math.min(170, Math.max(96, width * 0.3)));
  const chart = Math.max(60, width - label - 12);
  const x = (t) => label + ((t - t0) / (t1 - t0)) * chart;
  const height = AXIS_H + names.reduce((h, d) => h + LANE_HEAD + lanes.get(d).length * ROW_H, 0) + 6;
  const drawn = svg("svg", { class: "gantt", id: "gantt-svg", width, height, viewBox: `0 0 ${width} ${height}`,
    role: "group", "aria-label": `Timeline of ${runs.length} runs across ${names.length} lanes` },
    svg("defs", {}, svg("pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
      svg("rect", { width: 6, height: 6, class: "hatch-bg" }), svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, class: "hatch-line" }))));

  // The axis: ticks at round steps, labelled from the first record.
  const step = tickStep(t1 - t0, Math.max(2, Math.floor(chart / 80)));
  const axis = svg("g", { class: "axis" });
  // Under a second apart, ticks count from the first record; else they
  // fall on round times of day.
  const first = step < 1000 ? t0 : Math.ceil(t0 / step) * step;
  for (let t = first; t <= t1; t += step) {
    axis.append(svg("line", { x1: x(t), x2: x(t), y1: AXIS_H - 4, y2: height, class: "tick" }),
      svg("text", { x: x(t), y: AXIS_H - 8, "text-anchor": x(t) > width - 40 ? "end" : "middle" }, step < 1000 ? "+" + duration(t - t0) : clock(new Date(t).toISOString())));
  }
  drawn.append(axis);

  let y = AXIS_H;
  for (const d of names) {
    const rows = lanes.get(d);
    const lane = svg("g", { class: "lane", "data-lane": d || "(none)" },
      svg("rect", { class: "lane-band", x: 0, y, width, height: LANE_HEAD + rows.length * ROW_H }),
      svg("text", { class: "lane-name", x: 6, y: y + 15 }, d ? short(d, 30) : "no dataset"));
    y += LANE_HEAD;
    for (const r of rows) {
      const mode = d ? ((r.manifest.datasets[d] || "")[0] || "").toUpperCase() : "";
      const row = svg("g", { class: "row", "data-runway": r.id },
        svg("a", { href: "/runways/" + encodeURIComponent(r.id) },
          svg("text", { class: "row-name", x: 14, y: y + 15 }, short(r.id, Math.floor((label - 30) / 7)) + (mode ? " " + mode : ""))));
      for (const s of stretches(r, now)) {
        const w = Math.max(1.5, x(s.to) - x(s.from));
        const outcome = s.kind === "flight" && s.then ? " tone-" + tone(s.then) : "";
        const what = s.kind === "flight" ? `flying${s.then ? ", then " + s.then : ""}` :
          s.kind === "wait-locks" ? "waiting for its locks" : s.kind === "cleared" ? "cleared" : s.state.toLowerCase();
        row.append(svg("rect", { class: `seg ${s.kind}${outcome}`, x: x(s.from), y: y + 4, width: w, height: ROW_H - 8, rx: 2,
          "data-ms": Math.round(s.to - s.from), "data-from": s.from, "data-to": s.to, "data-state": s.state },
          svg("title", {}, `${r.id}: ${what} ${duration(s.to - s.from)} (${clock(new Date(s.from).toISOString())} → ${clock(new Date(s.to).toISOString())})`)));
      }
      lane.append(row);
      y += ROW_H;
    }
    drawn.append(lane);
  }
  return drawn;
}

// What the timeline's colours mean.
function ganttLegend() {
  return el("p", { class: "legend muted" },
    el("span", { class: "key-seg wait-locks" }, "waiting for locks"), el("span", { class: "key-seg wait" }, "other waits"),
    el("span", { class: "key-seg cleared" }, "cleared"), el("span", { class: "key-seg flight tone-ok" }, "flying (succeeded)"),
    el("span", { class: "key-seg flight tone-bad" }, "flying (failed)"),
    " E / S: exclusive / shared lock on the lane's dataset.");
}
