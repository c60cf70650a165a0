// The one pair of pure functions between the flow JSON and the canvas.
//
// flowToCanvas(flow, kinds) -> {nodes, edges} for React Flow; canvasToFlow(canvas, flow)
// -> the flow JSON again. Canvas nodes carry their semantic node in data.node, edges
// carry the port they leave from; positions live in flow.layout. Nothing else of the
// flow is touched, so canvasToFlow(flowToCanvas(f), f) deep-equals f.

const GRID = { x: 240, y: 150 };

/** A node's size on the canvas before it is measured (fit-to-screen works before every node is drawn). */
export const NODE_SIZE = { width: 190, height: 80 };

/** The outgoing ports of a node, as the server names them (see kaskad/flow/model.py ports()). */
export function portsOf(node, kindInfo) {
  switch (node.kind) {
    case 'wait': {
      const out = [{ id: 'next', label: 'next' }];
      if (node.until_event) out.push({ id: 'on_timeout', label: 'on timeout' });
      return out;
    }
    case 'branch':
      return [
        ...(node.cases || []).map((c, i) => ({ id: `case:${c.name || i}`, label: c.name || `case ${i}`, index: i })),
        { id: 'else', label: 'else' },
      ];
    case 'split':
      return (node.paths || [])
        .map((p, i) => ({ id: `path:${p.name}`, label: p.name, index: i, holdout: !!p.holdout }))
        .filter((p) => !p.holdout);
    case 'exit':
      return [];
    case 'send': case 'award': case 'update':
      return [{ id: 'next', label: 'next' }];
    default: {
      // A plugin's kind: its catalog entry lists the ports (always "next" first).
      const names = kindInfo?.ports || ['next', ...Object.keys(node.ports || {})];
      return names.map((n) => ({ id: n, label: n }));
    }
  }
}

/** The node id a port points at, or undefined. */
export function portTarget(node, port) {
  if (port.id === 'next' || port.id === 'on_timeout') return node[port.id];
  if (port.id === 'else') return node.else;
  if (port.id.startsWith('case:')) return node.cases?.[port.index]?.next;
  if (port.id.startsWith('path:')) return node.paths?.[port.index]?.next;
  return node.ports?.[port.id];
}

/** A copy of node with port pointing at target (undefined = disconnected). */
export function setPortTarget(node, port, target) {
  const n = { ...node };
  const put = (obj, key) => {
    if (target === undefined || target === null) delete obj[key];
    else obj[key] = target;
    return obj;
  };
  if (port.id === 'next' || port.id === 'on_timeout' || port.id === 'else') return put(n, port.id);
  if (port.id.startsWith('case:')) {
    n.cases = n.cases.map((c, i) => (i === port.index ? put({ ...c }, 'next') : c));
    return n;
  }
  if (port.id.startsWith('path:')) {
    n.paths = n.paths.map((p, i) => (i === port.index ? put({ ...p }, 'next') : p));
    return n;
  }
  // Plugin ports: "next" is handled above; the rest live in node.ports.
  const ports = put({ ...(n.ports || {}) }, port.id);
  if (Object.keys(ports).length) n.ports = ports;
  else delete n.ports;
  return n;
}

function kindIndex(kinds) {
  const byKind = {};
  for (const k of kinds || []) byKind[k.kind] = k;
  return byKind;
}

/** Where a node without a stored position goes: a simple grid, by order. */
export function defaultPosition(index) {
  return { x: (index % 4) * GRID.x, y: Math.floor(index / 4) * GRID.y };
}

/** The canvas for a flow: React Flow nodes (data.node is the flow node) and edges (one per connected port). */
export function flowToCanvas(flow, kinds) {
  const byKind = kindIndex(kinds);
  const layout = flow.layout || {};
  const ids = new Set((flow.nodes || []).map((n) => n.id));
  const nodes = (flow.nodes || []).map((node, i) => ({
    id: node.id,
    type: 'kaskad',
    initialWidth: NODE_SIZE.width,
    initialHeight: NODE_SIZE.height,
    position: layout[node.id] ? { x: layout[node.id].x, y: layout[node.id].y } : defaultPosition(i),
    data: { node, ports: portsOf(node, byKind[node.kind]), placed: !!layout[node.id] },
  }));
  const edges = [];
  for (const cn of nodes) {
    for (const port of cn.data.ports) {
      const target = portTarget(cn.data.node, port);
      // A port naming a missing node is drawn as a loose end (the validator reports it).
      if (target !== undefined && target !== null && ids.has(target)) {
        edges.push({ id: `${cn.id}:${port.id}`, source: cn.id, sourceHandle: port.id, target, targetHandle: 'in', data: { port: port.id } });
      }
    }
  }
  return { nodes, edges };
}

/**
 * The flow for a canvas: nodes in canvas order, ports from the edges, positions into layout.
 * `base` gives everything that is not on the canvas (key, name, entry, goal…).
 * A port that names a node missing from the canvas is kept as it is (an invalid draft is never
 * silently changed); a port whose edge was removed is disconnected.
 */
export function canvasToFlow(canvas, base, kinds) {
  const byKind = kindIndex(kinds);
  const ids = new Set(canvas.nodes.map((n) => n.id));
  const bySource = {};
  for (const e of canvas.edges) (bySource[e.source] ||= {})[e.sourceHandle] = e.target;
  const layout = {};
  const nodes = canvas.nodes.map((cn) => {
    let node = cn.data.node;
    for (const port of portsOf(node, byKind[node.kind])) {
      const fromEdge = bySource[cn.id]?.[port.id];
      const current = portTarget(node, port);
      if (fromEdge !== undefined) node = setPortTarget(node, port, fromEdge);
      else if (current !== undefined && current !== null && ids.has(current)) node = setPortTarget(node, port, undefined);
    }
    if (cn.data.placed !== false || cn.dragged) layout[cn.id] = { x: cn.position.x, y: cn.position.y };
    return node;
  });
  const flow = { ...base, nodes };
  const baseLayout = base.layout || {};
  // Keep layout entries the canvas cannot place (ids not on it): the validator names them.
  for (const [id, pos] of Object.entries(baseLayout)) if (!ids.has(id)) layout[id] = pos;
  if (Object.keys(layout).length || 'layout' in base) flow.layout = layout;
  return flow;
}

/** Rename node `from` to `to` everywhere it is named: its id, every port, start, layout, engagement conditions. */
export function renameNode(flow, from, to, kinds) {
  const byKind = kindIndex(kinds);
  const rewriteCond = (c) => {
    if (!c || typeof c !== 'object') return c;
    if (c.kind === 'engagement' && c.node === from) return { ...c, node: to };
    if (c.conditions) return { ...c, conditions: c.conditions.map(rewriteCond) };
    if (c.condition) return { ...c, condition: rewriteCond(c.condition) };
    return c;
  };
  const nodes = flow.nodes.map((n) => {
    let node = n.id === from ? { ...n, id: to } : n;
    for (const port of portsOf(node, byKind[node.kind])) {
      if (portTarget(node, port) === from) node = setPortTarget(node, port, to);
    }
    if (node.cases) node = { ...node, cases: node.cases.map((c) => ({ ...c, when: rewriteCond(c.when) })) };
    return node;
  });
  const out = { ...flow, nodes };
  if (flow.start === from) out.start = to;
  if (flow.layout && from in flow.layout) {
    out.layout = {};
    for (const [k, v] of Object.entries(flow.layout)) out.layout[k === from ? to : k] = v;
  }
  return out;
}

/** Remove nodes and every port, start and layout entry that names them. */
export function deleteNodes(flow, ids, kinds) {
  const gone = new Set(ids);
  const byKind = kindIndex(kinds);
  const nodes = flow.nodes.filter((n) => !gone.has(n.id)).map((n) => {
    let node = n;
    for (const port of portsOf(node, byKind[node.kind])) if (gone.has(portTarget(node, port))) node = setPortTarget(node, port, undefined);
    return node;
  });
  const out = { ...flow, nodes };
  if (gone.has(flow.start)) delete out.start;
  if (flow.layout) out.layout = Object.fromEntries(Object.entries(flow.layout).filter(([k]) => !gone.has(k)));
  return out;
}

/** A fresh id for a new node of `kind`: kind1, kind2… not taken in `taken`. */
export function newNodeId(kind, taken) {
  const base = kind.replace(/[^A-Za-z0-9_-]/g, '_').replace(/^[^A-Za-z]/, 'n');
  for (let i = 1; ; i++) if (!taken.has(`${base}${i}`)) return `${base}${i}`;
}
