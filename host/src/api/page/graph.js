// A filing's graph, drawn as SVG by hand (no library): its runways as
// nodes coloured by state, laid out in columns by dependency depth;
// `after` edges, data edges (a runway's `takes_from`) and conditional
// runways (a `when`) marked; skipped branches greyed; the runways a run
// delegated folded under their parent until its toggle opens them. A
// node is a link to its runway's page. Loaded before app.js, whose
// helpers (svg, tone, short) it calls when it draws.
"use strict";

const NODE_W = 164, NODE_H = 52, GAP_X = 50, GAP_Y = 18, PAD = 14;

// The graph of `top` (the filing's runways, in plan order) and, under
// each parent id in `expanded`, its children from `below` (parent id →
// runway views). `toggle(id)` is called when a node's fold is clicked.
function drawGraph(top, below, expanded, toggle) {
  const nodes = new Map();
  const add = (r, parent) => {
    if (nodes.has(r.id)) return;
    nodes.set(r.id, { r, parent, deps: [] });
    if (expanded.has(r.id)) for (const c of below.get(r.id) || []) add(c, r.id);
  };
  for (const r of top) add(r, null);

  const edges = [];
  for (const n of nodes.values()) {
    const r = n.r;
    const after = (r.manifest && r.manifest.after) || [];
    const data = Array.isArray(r.takes_from) ? r.takes_from : [];
    for (const a of new Set([...after, ...data])) if (nodes.has(a)) {
      edges.push({ from: a, to: r.id, kind: data.includes(a) ? "data" : "after" });
      n.deps.push(a);
    }
    if (n.parent) { edges.push({ from: n.parent, to: r.id, kind: "delegated" }); n.deps.push(n.parent); }
  }

  // Depth: one more than the deepest runway it waits for (a cycle, which
  // filing refuses, would count as depth 0).
  const depth = new Map();
  const depthOf = (id, seen) => {
    if (depth.has(id)) return depth.get(id);
    if (seen.has(id)) return 0;
    seen.add(id);
    let d = 0;
    for (const p of nodes.get(id).deps) d = Math.max(d, depthOf(p, seen) + 1);
    depth.set(id, d);
    return d;
  };
  const columns = [];
  for (const id of nodes.keys()) {
    const d = depthOf(id, new Set());
    (columns[d] = columns[d] || []).push(id);
  }
  // Each column in the order of its runways' dependencies' rows (fewer
  // crossings), else plan order.
  const row = new Map();
  columns.forEach((col, d) => {
    if (d > 0) {
      const mean = (id) => {
        const rows = nodes.get(id).deps.map((p) => row.get(p)).filter((x) => x !== undefined);
        return rows.length ? rows.reduce((a, b) => a + b, 0) / rows.length : 0;
      };
      col.sort((a, b) => mean(a) - mean(b));
    }
    col.forEach((id, i) => row.set(id, i));
  });
  const tallest = Math.max(1, ...columns.map((c) => c.length));
  const width = PAD * 2 + columns.length * NODE_W + (columns.length - 1) * GAP_X;
  const height = PAD * 2 + tallest * (NODE_H + GAP_Y) - GAP_Y;
  const at = (id) => ({ x: PAD + depth.get(id) * (NODE_W + GAP_X), y: PAD + row.get(id) * (NODE_H + GAP_Y) });

  const marker = (kind) => svg("marker", { id: "arrow-" + kind, viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, svg("path", { d: "M0,0 L10,5 L0,10 z", class: "head " + kind }));
  const drawn = svg("svg", { class: "graph", id: "graph-svg", width, height, viewBox: `0 0 ${width} ${height}`,
    role: "group", "aria-label": `Graph of ${nodes.size} runways` },
    svg("defs", {}, ["after", "data", "delegated", "skipped"].map(marker)));

  for (const e of edges) {
    const a = at(e.from), b = at(e.to);
    const target = nodes.get(e.to).r;
    const skipped = target.state === "SKIPPED";
    const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x - 2, y2 = b.y + NODE_H / 2;
    const dx = Math.max(24, (x2 - x1) / 2);
    const cls = ["edge", e.kind, skipped ? "skipped" : "", target.when ? "conditional" : ""].join(" ").trim();
    drawn.append(svg("path", { class: cls, "data-from": e.from, "data-to": e.to, "data-kind": e.kind,
      d: `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`,
      "marker-end": `url(#arrow-${skipped ? "skipped" : e.kind})` },
      svg("title", {}, `${e.from} → ${e.to}: ${e.kind === "data" ? "its output flows in" : e.kind === "delegated" ? "delegated" : "runs after"}`)));
  }

  for (const [id, n] of nodes) {
    const r = n.r, p = at(id);
    const kids = (below.get(id) || []).length;
    const said = [r.state, r.when ? `when ${r.when}` : null, span(r).duration].filter((x) => x).join(" · ");
    const g = svg("g", { class: `node tone-${tone(r.state)}${r.when ? " conditional" : ""}${n.parent ? " child" : ""}`,
      "data-runway": id, "data-state": r.state, transform: `translate(${p.x},${p.y})` },
      svg("a", { href: "/runways/" + encodeURIComponent(id), class: "node-link" },
        svg("title", {}, `${id} (${r.agent}): ${said}`),
        svg("rect", { class: "box", width: NODE_W, height: NODE_H, rx: 8 }),
        svg("rect", { class: "stripe", width: 6, height: NODE_H - 12, x: 6, y: 6, rx: 3 }),
        svg("text", { class: "name", x: 20, y: 21 }, short(id, 18)),
        svg("text", { class: "sub", x: 20, y: 39 }, short(`${r.agent} · ${r.state === "SKIPPED" ? "skipped" : span(r).duration || r.state.toLowerCase()}`, 23))));
    if (r.when) g.append(svg("g", { class: "cond", transform: `translate(${NODE_W - 22},-7)` },
      svg("title", {}, "Runs only when " + r.when),
      svg("path", { d: "M9,0 L18,9 L9,18 L0,9 Z" }), svg("text", { x: 9, y: 13, "text-anchor": "middle" }, "?")));
    if (kids) {
      const open = expanded.has(id);
      const fold = svg("g", { class: "fold", "data-toggle": id, role: "button", tabindex: 0,
        "aria-expanded": open ? "true" : "false", transform: `translate(${NODE_W / 2 - 17},${NODE_H - 9})`,
        onclick: () => toggle(id), onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(id); } } },
        svg("title", {}, `${open ? "Fold" : "Show"} the ${kids} runway${kids > 1 ? "s" : ""} it delegated`),
        svg("rect", { width: 34, height: 18, rx: 9 }),
        svg("text", { x: 17, y: 13, "text-anchor": "middle" }, open ? "−" : `+${kids}`));
      g.append(fold);
    }
    drawn.append(g);
  }
  return drawn;
}

// What the graph's colours and lines mean.
function graphLegend() {
  const chip = (t, label) => el("span", { class: "chip tone-" + t }, label);
  return el("p", { class: "legend muted" },
    chip("ok", "succeeded"), chip("active", "cleared / running"), chip("wait", "waiting"),
    chip("queued", "queued"), chip("bad", "failed / ended"), chip("skipped", "skipped"),
    el("span", { class: "key after" }, "runs after"), el("span", { class: "key data" }, "output flows in"),
    el("span", { class: "key delegated" }, "delegated"), el("span", { class: "key conditional" }, "? conditional"));
}
