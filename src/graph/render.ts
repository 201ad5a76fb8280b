// PURE: a graph (model.ts) -> dot, mermaid, JSON, SVG, or a self-contained HTML page. The layout is dagre's
// (@dagrejs/dagre: layered, compound, with edge labels), computed here when the picture is made, so the SVG and
// the page are static: they need no script and no network to be drawn (the page's small inline script only shows
// details on hover and click, and lists the differences `check` reported).
import dagre from '@dagrejs/dagre';
import type { Graph, GraphEdge, GraphNode } from './model.js';

const CHAR_W = 7.2;
const LINE_H = 16;

export function renderJson(g: Graph): string {
  return JSON.stringify(g, null, 2) + '\n';
}

// ---------------------------------------------------------------------------------------------- dot
const dq = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

export function renderDot(g: Graph): string {
  const L = ['digraph nsnet {', '  rankdir=LR;', '  node [shape=box, style=rounded, fontname="monospace", fontsize=10];', '  edge [fontname="monospace", fontsize=9];'];
  const node = (n: GraphNode, ind: string) => {
    const style = n.kind === 'bridge' ? ', style="rounded,filled", fillcolor="#e8f0fe"' : n.kind === 'outside' ? ', shape=ellipse' : '';
    L.push(`${ind}${dq(n.id)} [label=${dq(n.lines.join('\n'))}${style}${n.diff ? ', color=red, fontcolor=red' : ''}];`);
  };
  L.push('  subgraph cluster_host {', `    label=${dq('host network namespace')};`, '    style=dashed;');
  for (const n of g.nodes) if (n.parent === 'host') node(n, '    ');
  L.push('  }');
  for (const n of g.nodes) if (n.kind !== 'host' && n.parent !== 'host') node(n, '  ');
  for (const e of g.edges) {
    const style = e.kind === 'shares-netns' ? ', style=dashed' : e.kind === 'veth' ? ', dir=both' : e.kind === 'cut' ? ', style=dashed, arrowhead=tee, constraint=false' : '';
    L.push(`  ${dq(e.from)} -> ${dq(e.to)} [label=${dq(e.label)}${style}${e.diff ? ', color=red, fontcolor=red' : e.fault ? ', color=darkorange, fontcolor=darkorange, penwidth=2' : ''}];`);
  }
  L.push('}');
  return L.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------- mermaid
export function renderMermaid(g: Graph): string {
  const ids = new Map(g.nodes.map((n, i) => [n.id, `n${i}`]));
  const text = (s: string) => s.replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;');
  const L = ['flowchart LR'];
  const node = (n: GraphNode, ind: string) => {
    const t = `"${n.lines.map(text).join('<br/>')}"`;
    L.push(`${ind}${ids.get(n.id)}${n.kind === 'outside' ? `((${t}))` : `[${t}]`}`);
  };
  L.push('  subgraph host["host network namespace"]');
  for (const n of g.nodes) if (n.parent === 'host') node(n, '    ');
  L.push('  end');
  for (const n of g.nodes) if (n.kind !== 'host' && n.parent !== 'host') node(n, '  ');
  for (const e of g.edges) {
    const arrow = e.kind === 'veth' ? '<-->' : e.kind === 'shares-netns' ? '-.->' : e.kind === 'cut' ? '-.-x' : '-->';
    L.push(`  ${ids.get(e.from)} ${arrow}|"${text(e.label)}"| ${ids.get(e.to)}`);
  }
  const diffs = g.nodes.filter((n) => n.diff).map((n) => ids.get(n.id));
  if (diffs.length) L.push('  classDef diff stroke:#d00,color:#d00', `  class ${diffs.join(',')} diff`);
  const diffEdges = g.edges.map((e, i) => (e.diff ? i : -1)).filter((i) => i >= 0);
  if (diffEdges.length) L.push(`  linkStyle ${diffEdges.join(',')} stroke:#d00,color:#d00`);
  const faultEdges = g.edges.map((e, i) => (e.fault && !e.diff ? i : -1)).filter((i) => i >= 0);
  if (faultEdges.length) L.push(`  linkStyle ${faultEdges.join(',')} stroke:#e80,color:#e80,stroke-dasharray:6 3`);
  return L.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------- svg
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

interface Laid {
  nodes: Map<string, { x: number; y: number; width: number; height: number }>;
  edges: Map<string, { points: Array<{ x: number; y: number }>; x: number; y: number }>;
  width: number;
  height: number;
}

function layout(g: Graph): Laid {
  const d = new dagre.graphlib.Graph({ compound: true, multigraph: true });
  d.setGraph({ rankdir: 'LR', nodesep: 24, ranksep: 70, edgesep: 12, marginx: 16, marginy: 16 });
  for (const n of g.nodes) {
    if (n.kind === 'host') {
      d.setNode(n.id, { label: n.lines[0], paddingTop: 28, paddingLeft: 14, paddingRight: 14, paddingBottom: 14 });
      continue;
    }
    const w = Math.max(...n.lines.map((l) => l.length)) * CHAR_W + 20;
    d.setNode(n.id, { width: w, height: n.lines.length * LINE_H + 12 });
  }
  for (const n of g.nodes) if (n.parent) d.setParent(n.id, n.parent);
  // Laid out left to right the way a packet goes out: containers, the host's bridges, the outside world. A published
  // port's edge is laid out from its container to the ports node (and drawn the other way: traffic comes in).
  for (const e of g.edges) {
    if (e.kind === 'cut') continue; // drawn straight between its two containers, outside the layout
    const [a, b] = e.kind === 'publish' ? [e.to, e.from] : [e.from, e.to];
    d.setEdge(a, b, { width: e.label.length * 6.2 + 8, height: 14, labelpos: 'c' }, e.id);
  }
  dagre.layout(d);
  const nodes = new Map<string, { x: number; y: number; width: number; height: number }>();
  for (const id of d.nodes()) {
    const v = d.node(id) as { x: number; y: number; width: number; height: number } | undefined;
    if (v) nodes.set(id, { x: v.x, y: v.y, width: v.width, height: v.height });
  }
  const edges = new Map<string, { points: Array<{ x: number; y: number }>; x: number; y: number }>();
  for (const e of d.edges()) {
    const v = d.edge(e) as { points: Array<{ x: number; y: number }>; x: number; y: number };
    edges.set(e.name!, v);
  }
  const gr = d.graph() as { width?: number; height?: number };
  return { nodes, edges, width: Math.ceil(gr.width ?? 400), height: Math.ceil(gr.height ?? 300) };
}

export function renderSvg(g: Graph): string {
  const l = layout(g);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" class="nsnet-graph" width="${l.width}" height="${l.height}" viewBox="0 0 ${l.width} ${l.height}" font-family="monospace" font-size="11">`);
  out.push('<title>nsnet: networks, containers, veth pairs, published ports</title>');
  out.push('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>');
  out.push('<style>.node rect{fill:#fff;stroke:#444}.bridge rect{fill:#e8f0fe}.outside rect{fill:#f4f4f4;stroke-dasharray:4 3}.ports rect{fill:#fff7e0}'
    + '.host>rect{fill:#fafafa;stroke:#888;stroke-dasharray:6 4}.edge path{fill:none;stroke:#555;stroke-width:1.3}.shares-netns path{stroke-dasharray:5 4}'
    + '.masquerade path{stroke:#2a7}.publish path{stroke:#c70}.fault path{stroke:#e80!important;stroke-width:2.5;stroke-dasharray:6 3}.cut path{stroke:#b0b!important}.cut text{fill:#b0b!important}.fault text{fill:#e80}.diff rect,.diff path{stroke:#d00!important;stroke-width:2.5}.diff text{fill:#d00}'
    + '.elabel{fill:#333;font-size:10px}.node text.title{font-weight:bold}[data-id]{cursor:pointer}</style>');
  const host = g.nodes.find((n) => n.kind === 'host');
  const box = (n: GraphNode) => l.nodes.get(n.id)!;
  if (host && l.nodes.has(host.id)) {
    const b = box(host);
    out.push(`<g class="node host" data-id="${esc(host.id)}" data-kind="host"><rect x="${b.x - b.width / 2}" y="${b.y - b.height / 2}" width="${b.width}" height="${b.height}" rx="10"/>`
      + `<text class="title" x="${b.x - b.width / 2 + 10}" y="${b.y - b.height / 2 + 18}">${esc(host.lines[0])}</text></g>`);
  }
  for (const e of g.edges) {
    if (e.kind === 'cut') {
      const a = l.nodes.get(e.from);
      const b = l.nodes.get(e.to);
      if (!a || !b) continue;
      out.push(`<g class="edge cut fault" data-fault="${esc(e.fault ?? '')}" data-id="${esc(e.id)}" data-kind="cut" data-from="${esc(e.from)}" data-to="${esc(e.to)}">`
        + `<path d="M${a.x.toFixed(1)},${a.y.toFixed(1)} L${b.x.toFixed(1)},${b.y.toFixed(1)}" marker-end="url(#arrow)"/>`
        + `<text class="elabel" x="${((a.x + b.x) / 2).toFixed(1)}" y="${((a.y + b.y) / 2 + 4).toFixed(1)}" text-anchor="middle">${esc(e.label)}</text></g>`);
      continue;
    }
    const v = l.edges.get(e.id);
    if (!v) continue;
    const pts = e.kind === 'publish' ? [...v.points].reverse() : v.points;
    const d = pts.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
    const ends = e.kind === 'veth' ? ' marker-start="url(#arrow)" marker-end="url(#arrow)"' : ' marker-end="url(#arrow)"';
    out.push(`<g class="edge ${e.kind}${e.diff ? ' diff' : ''}${e.fault ? ' fault' : ''}"${e.fault ? ` data-fault="${esc(e.fault)}"` : ''} data-id="${esc(e.id)}" data-kind="${e.kind}" data-from="${esc(e.from)}" data-to="${esc(e.to)}"><path d="${d}"${ends}/>`
      + `<text class="elabel" x="${v.x}" y="${v.y + 4}" text-anchor="middle">${esc(e.label)}</text></g>`);
  }
  for (const n of g.nodes) {
    if (n.kind === 'host' || !l.nodes.has(n.id)) continue;
    const b = box(n);
    const x0 = b.x - b.width / 2;
    const y0 = b.y - b.height / 2;
    const texts = n.lines.map((t, i) => `<text${i ? '' : ' class="title"'} x="${x0 + 10}" y="${y0 + 18 + i * LINE_H}">${esc(t)}</text>`).join('');
    out.push(`<g class="node ${n.kind}${n.diff ? ' diff' : ''}" data-id="${esc(n.id)}" data-kind="${n.kind}"><rect x="${x0}" y="${y0}" width="${b.width}" height="${b.height}" rx="${n.kind === 'outside' ? 18 : 6}"/>${texts}</g>`);
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------- html
/** `</script>` inside inline JSON would end the script element: escape `<`. */
const inlineJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c');

export function renderHtml(g: Graph, title = 'nsnet'): string {
  const details: Record<string, unknown> = {};
  for (const n of g.nodes) details[n.id] = { ...n.details, ...(n.diff ? { Difference: n.diff } : {}) };
  for (const e of g.edges) details[e.id] = { Kind: e.kind, From: e.from, To: e.to, Label: e.label, ...(e.fault ? { [e.kind === 'cut' ? 'Partition' : 'Impairment']: e.fault } : {}), ...(e.diff ? { Difference: e.diff } : {}) };
  const diffs = g.differences.length
    ? `<ul id="differences">${g.differences.map((d) => `<li>${esc(d)}</li>`).join('')}</ul>`
    : '<p id="differences" class="clean">check: no difference between the store and the kernel</p>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;display:flex;min-height:100vh}
main{flex:1;overflow:auto;padding:12px}main svg{max-width:100%;height:auto}aside{width:420px;border-left:1px solid #ddd;padding:12px;background:#fcfcfc;overflow:auto}
pre{font-size:12px;white-space:pre-wrap;word-break:break-all}#differences li{color:#d00}.clean{color:#2a7}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
</style></head><body>
<main><h1 style="font-size:18px">${esc(title)}</h1>
<div class="legend"><span>⇄ veth pair</span><span style="color:#2a7">→ masquerade</span><span style="color:#c70">→ published port (DNAT)</span><span>⇢ shared netns</span><span style="color:#e80">orange, dashed: an impairment (nsnet netem)</span><span style="color:#b0b">✂ a partition (nsnet partition)</span><span style="color:#d00">red: a difference check reports</span></div>
${renderSvg(g)}</main>
<aside><h2 style="font-size:15px">Details</h2><p id="hint">Hover or click a node or an edge.</p><pre id="details"></pre>
<h2 style="font-size:15px">Differences (nsnet check)</h2>${diffs}</aside>
<script id="nsnet-data" type="application/json">${inlineJson(details)}</script>
<script>
(function(){var d=JSON.parse(document.getElementById('nsnet-data').textContent),p=document.getElementById('details'),pinned=null;
function show(id){p.textContent=JSON.stringify(d[id],null,2);document.getElementById('hint').textContent=id;}
document.querySelectorAll('[data-id]').forEach(function(el){var id=el.getAttribute('data-id');
el.addEventListener('mouseenter',function(){if(!pinned)show(id);});el.addEventListener('click',function(ev){ev.stopPropagation();pinned=id;show(id);});});
document.body.addEventListener('click',function(){pinned=null;});})();
</script></body></html>
`;
}

export type GraphFormat = 'html' | 'svg' | 'dot' | 'mermaid' | 'json';
export const GRAPH_FORMATS: GraphFormat[] = ['html', 'svg', 'dot', 'mermaid', 'json'];

export function render(g: Graph, format: GraphFormat, title?: string): string {
  switch (format) {
    case 'html': return renderHtml(g, title);
    case 'svg': return renderSvg(g);
    case 'dot': return renderDot(g);
    case 'mermaid': return renderMermaid(g);
    case 'json': return renderJson(g);
  }
}

export type { GraphEdge };
