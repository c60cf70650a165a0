import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderToStaticMarkup } from 'react-dom/server';
import { SchemaForm } from '../src/SchemaForm.jsx';
import { nodeFormContext } from '../src/Panel.jsx';
import { defaultFor, describe as describeSchema, optionIndex, stringProblem, numberProblem } from '../src/schema.js';

// tests/editor/test_unit.py hands over the live server catalog; alone, the committed snapshot is used.
const catalog = JSON.parse(readFileSync(process.env.KASKAD_CATALOG || join(import.meta.dirname, 'catalog.snapshot.json'), 'utf8'));
const kind = (k) => catalog.node_kinds.find((x) => x.kind === k);
const mechanic = (m) => catalog.mechanics.find((x) => x.name === m);

function render(schema, value, ctx = {}) {
  const html = renderToStaticMarkup(<SchemaForm schema={schema} value={value} onChange={() => {}} ctx={ctx} />);
  const doc = { html };
  doc.field = (path) => {
    const m = html.match(new RegExp(`<(input|select|textarea)[^>]*data-path="${path.replace(/[[\]]/g, '\\$&')}"[^>]*>([^<]*</textarea>)?`));
    return m && m[0];
  };
  return doc;
}

describe('schema form', () => {
  it('renders a send node with its channel message schema and hides the ports', () => {
    const node = { kind: 'send', id: 'mail', channel: 'email', message: { subject: 'Hi', html: '<p>x</p>' }, next: 'wait' };
    const f = render(kind('send').schema, node, nodeFormContext(node, catalog));
    expect(f.field('message.subject')).toContain('value="Hi"');
    expect(f.field('message.html')).toMatch(/^<textarea/);
    expect(f.html).toContain('subject *'); // required
    expect(f.html).toContain('html *<span class="field-title"> · HTML body</span>'); // titled from the schema
    expect(f.field('channel')).toMatch(/^<select/);
    for (const ch of catalog.channels) expect(f.html).toContain(`<option value="${ch.name}"`);
    expect(f.field('next')).toBeNull();
    expect(f.field('id')).toBeNull(); // renamed in its own field, with references
    expect(f.field('on_cap')).toMatch(/^<select/);
    expect(f.html).toContain('data-path="cascade"');
  });

  it('swaps in the message schema of another channel', () => {
    const node = { kind: 'send', id: 's', channel: 'sms', message: { text: 'code {{ award.code }}' } };
    const f = render(kind('send').schema, node, nodeFormContext(node, catalog));
    expect(f.field('message.text')).toContain('code {{ award.code }}');
    expect(f.field('message.subject')).toBeNull();
  });

  it('renders an award node with its mechanic config: numbers, patterns, booleans', () => {
    const node = { kind: 'award', id: 'gift', mechanic: 'promo_code', config: { percent: 100, valid_for: 'P14D' } };
    const f = render(kind('award').schema, node, nodeFormContext(node, catalog));
    expect(f.field('config.percent')).toContain('type="number"');
    expect(f.field('config.percent')).toContain('value="100"');
    expect(f.field('config.valid_for')).toContain('pattern="^(?&lt;sign&gt;-)?P'); // Python (?P<…>) made JavaScript
    expect(f.field('config.combinable')).toContain('type="checkbox"');
    expect(f.field('config.combinable')).toContain('checked'); // its default is true
    expect(f.field('mechanic')).toMatch(/^<select/);
  });

  it('marks a string that breaks its pattern and a number out of range', () => {
    const node = { kind: 'award', id: 'cb', mechanic: 'cashback', config: { percent: 0, valid_for: '14 days' } };
    const f = render(kind('award').schema, node, nodeFormContext(node, catalog));
    expect(f.html).toContain('ISO-8601 duration');
    expect(f.html).toContain('more than 0');
    expect(f.html.match(/class="field invalid"/g)).toHaveLength(2);
  });

  it('renders unions as a choice of their tags and the chosen option below', () => {
    const node = { kind: 'branch', id: 'came', cases: [{ name: 'came back', when: { kind: 'event', event: 'order_placed', since: 'entry' }, next: 'r' }], else: 'g' };
    const f = render(kind('branch').schema, node, nodeFormContext(node, catalog));
    const sel = f.field('cases[0].when');
    expect(sel).toContain('data-role="union"');
    for (const tag of ['attribute', 'tag', 'event', 'engagement', 'segment', 'all', 'any', 'not']) expect(f.html).toContain(`>${tag}</option>`);
    expect(f.field('cases[0].when.event')).toContain('value="order_placed"');
    expect(f.field('cases[0].when.since')).toMatch(/^<select/);
    expect(f.field('cases[0].next')).toBeNull();
    expect(f.field('else')).toBeNull();
  });

  it('renders optional objects as "set" buttons and arrays of choices as checkboxes', () => {
    const empty = render(kind('wait').schema, { kind: 'wait', id: 'w', for: 'P1D' }, nodeFormContext({ kind: 'wait' }, catalog));
    expect(empty.html).toMatch(/data-path="until_time" data-action="add"/);
    const node = { kind: 'wait', id: 'w', until_time: { from: '09:00', to: '18:00', days: ['mon'] } };
    const f = render(kind('wait').schema, node, nodeFormContext(node, catalog));
    expect(f.field('until_time.from')).toContain('value="09:00"');
    expect(f.field('until_time.days.mon')).toContain('checked');
    expect(f.field('until_time.days.sun')).not.toContain('checked');
  });

  it('renders the flow settings: entry union, re-entry, free-form maps as JSON', () => {
    const flow = { schema: 'kaskad.flow/1', key: 'k', name: 'N', entry: { kind: 'event', event: 'cart_updated', where: { 'properties.total': 10 } }, nodes: [] };
    const f = render(catalog.flow_schema, flow, { hidden: (p) => p.length === 1 && ['schema', 'key', 'nodes', 'layout'].includes(p[0]) });
    expect(f.field('name')).toContain('value="N"');
    expect(f.field('entry')).toContain('data-role="union"');
    expect(f.field('entry.where')).toContain('value="{&quot;properties.total&quot;:10}"');
    expect(f.field('key')).toBeNull();
    expect(f.html).toContain('data-path="reentry" data-action="add"');
  });
});

describe('schema helpers', () => {
  const root = kind('wait').schema;
  it('reads optional fields and refs as msgspec emits them', () => {
    const wait = describeSchema(root, root).schema;
    const forField = describeSchema(wait.properties.for, root);
    expect(forField).toMatchObject({ type: 'string', nullable: true });
    expect(describeSchema(wait.properties.until_time, root)).toMatchObject({ type: 'object', nullable: true });
  });
  it('starts values with defaults and required parts', () => {
    expect(defaultFor(mechanic('cashback').config_schema, mechanic('cashback').config_schema)).toEqual({ percent: 0, valid_for: '' });
    expect(defaultFor(mechanic('promo_code').config_schema, mechanic('promo_code').config_schema)).toEqual({ percent: 0, valid_for: '' });
    const branch = kind('branch').schema;
    const caseSchema = describeSchema(branch, branch).schema.properties.cases.items;
    expect(defaultFor(caseSchema, branch)).toEqual({ when: { kind: 'attribute', attribute: '' }, next: '' });
  });
  it('picks the union option by tag', () => {
    const opts = [{ properties: { kind: { enum: ['a'] } } }, { properties: { kind: { enum: ['b'] } } }];
    expect(optionIndex(opts, { kind: 'b' })).toBe(1);
    expect(optionIndex(opts, { kind: 'zzz' })).toBe(0);
  });
  it('says what is wrong with a value', () => {
    expect(stringProblem({ pattern: '^P\\d+D$' }, 'P3D')).toBeNull();
    expect(stringProblem({ pattern: '^P\\d+D$', description: 'a duration' }, '3 days')).toBe('expected a duration');
    expect(stringProblem({ minLength: 1 }, '')).toBe('required');
    expect(numberProblem({ type: 'integer', minimum: 1 }, 0)).toBe('at least 1');
    expect(numberProblem({ type: 'integer' }, 1.5)).toBe('a whole number');
  });
});
