import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { canvasToFlow, deleteNodes, flowToCanvas, portsOf, renameNode } from '../src/canvas.js';
import { autoLayout } from '../src/layout.js';
import { copiesOf, newNode } from '../src/nodes.js';
import { commit, emptyHistory, redo, undo } from '../src/history.js';

const FLOWS = join(import.meta.dirname, '..', '..', 'flows');
const flows = readdirSync(FLOWS).filter((f) => f.endsWith('.json')).map((f) => [f, JSON.parse(readFileSync(join(FLOWS, f), 'utf8'))]);
const PLUGIN_KINDS = [{ kind: 'webhook', core: false, ports: ['next', 'failed'] }];

const winback = () => structuredClone(flows.find(([f]) => f === 'restaurant-winback.json')[1]);

describe('flowToCanvas / canvasToFlow', () => {
  it.each(flows)('round-trips %s unchanged', (_, flow) => {
    const original = structuredClone(flow);
    const canvas = flowToCanvas(flow, []);
    expect(canvasToFlow(canvas, flow, [])).toEqual(original);
    expect(flow).toEqual(original); // pure: the input is not touched
  });

  it('draws one node per flow node and one edge per connected port', () => {
    const { nodes, edges } = flowToCanvas(winback(), []);
    expect(nodes.map((n) => n.id)).toEqual(['offer', 'mail', 'wait', 'came', 'review', 'gift', 'gift_sms', 'end']);
    expect(nodes.find((n) => n.id === 'came').position).toEqual({ x: 0, y: 480 });
    expect(edges.map((e) => `${e.source}-${e.sourceHandle}->${e.target}`).sort()).toEqual([
      'came-case:came back->review', 'came-else->gift', 'gift-next->gift_sms', 'gift_sms-next->end',
      'mail-next->wait', 'offer-next->mail', 'review-next->end', 'wait-next->came',
    ]);
  });

  it('turns a new edge into the port field and a removed edge into a disconnected port', () => {
    const flow = winback();
    const canvas = flowToCanvas(flow, []);
    const edges = canvas.edges.filter((e) => e.id !== 'came:else')
      .concat({ id: 'x', source: 'came', sourceHandle: 'else', target: 'end' })
      .filter((e) => e.id !== 'came:case:came back');
    const out = canvasToFlow({ nodes: canvas.nodes, edges }, flow, []);
    const came = out.nodes.find((n) => n.id === 'came');
    expect(came.else).toBe('end');
    expect(came.cases[0]).not.toHaveProperty('next');
    expect(came.cases[0].when).toEqual(flow.nodes[3].cases[0].when);
  });

  it('keeps moved positions in layout and leaves unplaced nodes out of it', () => {
    const flow = { ...winback(), layout: { offer: { x: 0, y: 0 } } };
    const canvas = flowToCanvas(flow, []);
    canvas.nodes[1] = { ...canvas.nodes[1], position: { x: 5, y: 6 }, dragged: true };
    const out = canvasToFlow(canvas, flow, []);
    expect(out.layout).toEqual({ offer: { x: 0, y: 0 }, mail: { x: 5, y: 6 } });
  });

  it('keeps a port naming a missing node (an invalid draft is not silently changed)', () => {
    const flow = winback();
    flow.nodes[0].next = 'nowhere';
    const canvas = flowToCanvas(flow, []);
    expect(canvas.edges.some((e) => e.source === 'offer')).toBe(false);
    expect(canvasToFlow(canvas, flow, []).nodes[0].next).toBe('nowhere');
  });

  it('knows the ports of every kind as the server does', () => {
    expect(portsOf({ kind: 'wait', for: 'P1D' }).map((p) => p.id)).toEqual(['next']);
    expect(portsOf({ kind: 'wait', until_event: { event: 'e', timeout: 'P1D' } }).map((p) => p.id)).toEqual(['next', 'on_timeout']);
    expect(portsOf({ kind: 'branch', cases: [{ name: 'a' }, {}] }).map((p) => p.id)).toEqual(['case:a', 'case:1', 'else']);
    expect(portsOf({ kind: 'split', paths: [{ name: 'a' }, { name: 'c', holdout: true }] }).map((p) => p.id)).toEqual(['path:a']);
    expect(portsOf({ kind: 'exit' })).toEqual([]);
    expect(portsOf({ kind: 'webhook' }, PLUGIN_KINDS[0]).map((p) => p.id)).toEqual(['next', 'failed']);
  });

  it('round-trips a plugin node with its own ports', () => {
    const flow = { schema: 'kaskad.flow/1', key: 'p', name: 'p', entry: { kind: 'api' },
      nodes: [{ kind: 'webhook', id: 'hook', config: { url: 'x' }, next: 'a', ports: { failed: 'b' } }, { kind: 'exit', id: 'a' }, { kind: 'exit', id: 'b' }] };
    const canvas = flowToCanvas(flow, PLUGIN_KINDS);
    expect(canvas.edges.map((e) => e.id).sort()).toEqual(['hook:failed', 'hook:next']);
    expect(canvasToFlow(canvas, flow, PLUGIN_KINDS)).toEqual(flow);
  });
});

describe('editing operations', () => {
  it('renames a node everywhere it is named', () => {
    const flow = { ...winback(), start: 'mail' };
    flow.nodes[3].cases[0].when = { kind: 'engagement', node: 'mail', status: 'opened' };
    const out = renameNode(flow, 'mail', 'email1', []);
    expect(out.nodes[1].id).toBe('email1');
    expect(out.nodes[0].next).toBe('email1');
    expect(out.start).toBe('email1');
    expect(out.layout.email1).toEqual(flow.layout.mail);
    expect(out.layout).not.toHaveProperty('mail');
    expect(out.nodes[3].cases[0].when.node).toBe('email1');
  });

  it('deletes nodes with every reference to them', () => {
    const out = deleteNodes(winback(), ['gift'], []);
    expect(out.nodes.map((n) => n.id)).not.toContain('gift');
    expect(out.nodes.find((n) => n.id === 'came')).not.toHaveProperty('else');
    expect(out.layout).not.toHaveProperty('gift');
  });

  it('pastes copies with fresh ids, keeping only the edges inside the copy', () => {
    const flow = winback();
    const picked = flow.nodes.filter((n) => ['gift', 'gift_sms'].includes(n.id));
    const { nodes } = copiesOf(picked, flow.nodes.map((n) => n.id), []);
    expect(nodes.map((n) => n.id)).toEqual(['gift_copy', 'gift_sms_copy']);
    expect(nodes[0].next).toBe('gift_sms_copy');
    expect(nodes[1]).not.toHaveProperty('next'); // "end" was not copied
  });

  it('starts a new node with the fields its kind requires', () => {
    const catalog = { channels: [{ name: 'email' }], mechanics: [{ name: 'points' }] };
    const sendKind = { kind: 'send', core: true, schema: { $ref: '#/$defs/S', $defs: { S: { type: 'object', properties: { kind: { enum: ['send'] }, id: { type: 'string' }, channel: { type: 'string', minLength: 1 }, next: { type: 'string' } }, required: ['kind', 'id', 'channel'] } } } };
    expect(newNode(sendKind, new Set(['send1']), catalog)).toEqual({ kind: 'send', id: 'send2', channel: 'email' });
  });

  it('lays out every node top to bottom', () => {
    const layout = autoLayout(winback(), []);
    expect(Object.keys(layout).sort()).toEqual(['came', 'end', 'gift', 'gift_sms', 'mail', 'offer', 'review', 'wait']);
    expect(layout.offer.y).toBeLessThan(layout.mail.y);
    expect(layout.came.y).toBeLessThan(layout.review.y);
    expect(layout.review.x).not.toBe(layout.gift.x);
  });

  it('undoes and redoes, folding edits of one field into one step', () => {
    let h = emptyHistory({ v: 0 });
    h = commit(h, { v: 1 }, 'form:a');
    h = commit(h, { v: 2 }, 'form:a');
    h = commit(h, { v: 3 }, null);
    expect(h.past.map((f) => f.v)).toEqual([0, 2]);
    h = undo(undo(h));
    expect(h.present.v).toBe(0);
    h = redo(h);
    expect(h.present.v).toBe(2);
    expect(undo(emptyHistory(1))).toEqual(emptyHistory(1));
  });
});
