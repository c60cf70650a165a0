// Building flow nodes: a new node of a kind, pasted copies, a one-line summary.
import { defaultFor, describe } from './schema.js';
import { newNodeId, portsOf, portTarget, setPortTarget } from './canvas.js';

/** Port fields are edited by connecting on the canvas, not in the form. */
export const PORT_FIELDS = new Set(['next', 'else', 'on_timeout', 'ports']);

/** A new node of catalog kind `kindInfo` with the required fields it needs to start with. */
export function newNode(kindInfo, taken, catalog) {
  const id = newNodeId(kindInfo.kind, taken);
  const node = { kind: kindInfo.kind, id };
  const s = describe(kindInfo.schema || {}, kindInfo.schema).schema;
  for (const key of s.required || []) {
    if (key in node || PORT_FIELDS.has(key)) continue;
    node[key] = defaultFor(s.properties[key], kindInfo.schema);
  }
  if (kindInfo.kind === 'send' && !node.channel) node.channel = catalog?.channels?.[0]?.name || '';
  if (kindInfo.kind === 'award' && !node.mechanic) node.mechanic = catalog?.mechanics?.[0]?.name || '';
  if (!kindInfo.core) node.config = node.config || {};
  if (kindInfo.kind === 'wait') node.for = 'P1D';
  return node;
}

/** Copies of `nodes` with fresh ids; ports between copied nodes follow the copies, others are dropped. */
export function copiesOf(nodes, taken, kinds) {
  const byKind = Object.fromEntries((kinds || []).map((k) => [k.kind, k]));
  const ids = new Set(taken);
  const map = {};
  for (const n of nodes) {
    let id = `${n.id}_copy`;
    for (let i = 2; ids.has(id); i++) id = `${n.id}_copy${i}`;
    ids.add(id);
    map[n.id] = id;
  }
  return {
    map,
    nodes: nodes.map((n) => {
      let node = { ...structuredClone(n), id: map[n.id] };
      for (const port of portsOf(node, byKind[node.kind])) {
        const t = portTarget(node, port);
        if (t !== undefined) node = setPortTarget(node, port, map[t]);
      }
      return node;
    }),
  };
}

/** A short line saying what a node does, shown on the canvas. */
export function summary(node) {
  switch (node.kind) {
    case 'send': return `${node.channel || '?'}${node.message?.subject ? `: ${node.message.subject}` : node.message?.template ? `: ${node.message.template}` : ''}`;
    case 'award': return node.mechanic || '?';
    case 'wait':
      if (node.for) return `for ${node.for}`;
      if (node.until_event) return `until ${node.until_event.event || '?'}`;
      if (node.until_time) return `until ${node.until_time.from}–${node.until_time.to}`;
      if (node.until_date) return `until ${node.until_date.attribute || '?'}`;
      return '';
    case 'branch': return `${(node.cases || []).length} case(s) + else`;
    case 'split': return (node.paths || []).map((p) => `${p.name} ${p.weight}%`).join(' / ');
    case 'update': return Object.keys(node.set || {}).concat(node.add_tags || []).join(', ');
    default: return '';
  }
}
