// The property panel: the selected node's form (from its kind's schema, with the
// channel's message schema and the mechanic's config schema swapped in), or the
// flow's own settings when nothing is selected.
import { memo, useEffect, useState } from 'react';
import { SchemaForm } from './SchemaForm.jsx';
import { PORT_FIELDS } from './nodes.js';
import { api } from './api.js';

const byName = (list) => Object.fromEntries((list || []).map((x) => [x.name, x]));

/** ctx for the node form: hide what the canvas edits, swap in plugin schemas. */
export function nodeFormContext(node, catalog) {
  const channels = byName(catalog.channels);
  const mechanics = byName(catalog.mechanics);
  const choice = (names, title) => ({ title, enum: names });
  return {
    hidden: (path) => (path.length === 1 && (path[0] === 'kind' || path[0] === 'id' || PORT_FIELDS.has(path[0])))
      || (path.length === 3 && (path[0] === 'cases' || path[0] === 'paths') && path[2] === 'next'),
    override: (path) => {
      const key = path.join('.');
      if (node.kind === 'send' || path[0] === 'cascade') {
        if (key === 'channel' || (path[0] === 'cascade' && path.length === 3 && path[2] === 'channel')) {
          return choice(Object.keys(channels), 'Channel');
        }
        if (key === 'message') return channels[node.channel]?.message_schema || null;
        if (path[0] === 'cascade' && path.length === 3 && path[2] === 'message') {
          return channels[node.cascade?.[path[1]]?.channel]?.message_schema || null;
        }
      }
      if (node.kind === 'award') {
        if (key === 'mechanic') return choice(Object.keys(mechanics), 'Mechanic');
        if (key === 'config') return mechanics[node.mechanic]?.config_schema || null;
      }
      return null;
    },
  };
}

const FLOW_CTX = { hidden: (path) => path.length === 1 && ['schema', 'key', 'nodes', 'layout'].includes(path[0]) };

function RenameId({ id, onRename }) {
  const [text, setText] = useState(id);
  useEffect(() => setText(id), [id]);
  const apply = () => { if (text !== id) onRename(text); };
  return (
    <label className="field">
      <span className="field-label">id</span>
      <input data-testid="node-id" value={text} onChange={(e) => setText(e.target.value)}
        onBlur={apply} onKeyDown={(e) => { if (e.key === 'Enter') apply(); if (e.key === 'Escape') setText(id); }} />
    </label>
  );
}

function Preview({ node }) {
  const [contact, setContact] = useState('');
  const [result, setResult] = useState(null);
  const run = async () => {
    try {
      setResult(await api('/editor/preview', { method: 'POST', body: { message: node.message || {}, contact: contact || null } }));
    } catch (e) {
      setResult({ error: e.message });
    }
  };
  return (
    <div className="preview">
      <h4>Preview</h4>
      <div className="row">
        <input data-testid="preview-contact" placeholder="contact external id (empty: no contact)" value={contact}
          onChange={(e) => setContact(e.target.value)} />
        <button type="button" data-testid="preview-run" onClick={run}>Preview</button>
      </div>
      {result?.error && <div className="error" data-testid="preview-error">{result.error}</div>}
      {result?.rendered && (
        <dl data-testid="preview-result">
          {Object.entries(result.rendered).map(([k, v]) => (
            <div key={k}><dt>{k}</dt><dd>{typeof v === 'string' ? v : JSON.stringify(v)}</dd></div>
          ))}
        </dl>
      )}
    </div>
  );
}

function Panel({ flow, node, catalog, errors, readOnly, onNodeChange, onRename, onFlowChange }) {
  if (!node) {
    return (
      <aside className="panel" data-testid="panel-flow">
        <h3>Flow settings</h3>
        <div className="muted">key: <code>{flow.key}</code></div>
        <fieldset disabled={readOnly}>
          <SchemaForm schema={catalog.flow_schema} value={flow} ctx={FLOW_CTX} onChange={(v) => onFlowChange(v, 'form:flow')} />
        </fieldset>
      </aside>
    );
  }
  const kindInfo = catalog.node_kinds.find((k) => k.kind === node.kind);
  const mine = errors.filter((e) => e.node === node.id);
  return (
    <aside className="panel" data-testid="panel-node">
      <h3>{kindInfo?.title || node.kind}</h3>
      {kindInfo?.description && <p className="muted">{kindInfo.description}</p>}
      {mine.length > 0 && (
        <ul className="errors" data-testid="node-errors">
          {mine.map((e, i) => <li key={i}><code>{e.path}</code> {e.message}</li>)}
        </ul>
      )}
      <fieldset disabled={readOnly}>
        <RenameId id={node.id} onRename={onRename} />
        {kindInfo && !kindInfo.core && (
          // A plugin kind's schema describes its config; ports are drawn on the canvas.
          <SchemaForm schema={kindInfo.schema || {}} value={node.config || {}} ctx={{}}
            onChange={(v) => onNodeChange({ ...node, config: v }, `form:${node.id}`)} />
        )}
        {kindInfo?.core && kindInfo.schema
          ? <SchemaForm schema={kindInfo.schema} value={node} ctx={nodeFormContext(node, catalog)}
              onChange={(v) => onNodeChange(v, `form:${node.id}`)} />
          : !kindInfo && <p className="error">The server's catalog has no kind {node.kind}.</p>}
      </fieldset>
      {node.kind === 'send' && <Preview node={node} />}
    </aside>
  );
}

export default memo(Panel);
