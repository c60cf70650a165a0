// Auto-layout: dagre ranks the graph top to bottom; the result goes into flow.layout.
import dagre from '@dagrejs/dagre';
import { NODE_SIZE, flowToCanvas } from './canvas.js';

/** A new layout object for every node of the flow (top-to-bottom, ports fan out sideways). */
export function autoLayout(flow, kinds) {
  const { nodes, edges } = flowToCanvas(flow, kinds);
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'TB', nodesep: 40, ranksep: 60 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.id, { ...NODE_SIZE });
  for (const e of edges) g.setEdge(e.source, e.target);
  dagre.layout(g);
  const layout = {};
  for (const n of nodes) {
    const p = g.node(n.id);
    layout[n.id] = { x: Math.round(p.x - NODE_SIZE.width / 2), y: Math.round(p.y - NODE_SIZE.height / 2) };
  }
  return layout;
}
