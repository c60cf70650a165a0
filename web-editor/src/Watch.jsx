// Watching and testing a flow: live per-node counts, a dry-run test for one
// contact, and the list of versions.
import { useEffect, useState } from 'react';
import { api } from './api.js';

const STATS_EVERY_MS = 4000;

/** Poll GET /flows/{key}/stats; a server without the journey engine answers 404, which is said once, calmly. */
export function useStats(flowKey) {
  const [state, setState] = useState({ data: null, note: null });
  useEffect(() => {
    let stopped = false;
    let timer = null;
    const poll = async () => {
      try {
        const data = await api(`/flows/${flowKey}/stats`);
        if (!stopped) setState({ data, note: null });
      } catch (e) {
        if (!stopped) setState({ data: null, note: e.status === 404 ? 'Live counts: not available on this server (no journey engine yet).' : `Live counts: ${e.message}` });
      }
      if (!stopped) timer = setTimeout(poll, STATS_EVERY_MS);
    };
    poll();
    return () => { stopped = true; clearTimeout(timer); };
  }, [flowKey]);
  return state;
}

export function TestMode({ flowKey, flow, onResult }) {
  const [contact, setContact] = useState('');
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const run = async () => {
    setError(null);
    try {
      const r = await api(`/flows/${flowKey}/test`, { method: 'POST', body: { contact, document: flow } });
      setResult(r); onResult(r);
    } catch (e) {
      setResult(null); onResult(null);
      setError(e.status === 404 && !e.body?.detail?.includes('contact')
        ? 'Test mode needs the journey engine, which this server does not have yet.'
        : e.message);
    }
  };
  return (
    <section className="test-mode" data-testid="test-mode">
      <h4>Test with a contact</h4>
      <p className="muted small">A dry run of this draft: nothing is written, nothing is sent.</p>
      <div className="row">
        <input data-testid="test-contact" placeholder="contact external id" value={contact} onChange={(e) => setContact(e.target.value)} />
        <button data-testid="test-run" onClick={run} disabled={!contact}>Run</button>
        {result && <button onClick={() => { setResult(null); onResult(null); }}>Clear</button>}
      </div>
      {error && <div className="error" data-testid="test-error">{error}</div>}
      {result && (
        <div data-testid="test-result">
          <div>Outcome: <b data-testid="test-outcome">{result.outcome}</b></div>
          <ol className="test-path">
            {result.path.map((s, i) => (
              <li key={i}><b>{s.node}</b> <span className="muted">{s.kind}{s.port ? ` → ${s.port}` : ''}</span> {s.note}</li>
            ))}
          </ol>
          {result.sent?.length > 0 && <div className="muted small">Would send: {result.sent.map((s) => (typeof s === 'string' ? s : s.channel || s.node || JSON.stringify(s))).join(', ')}</div>}
        </div>
      )}
    </section>
  );
}

export function Versions({ flowKey, tick, viewing, onView }) {
  const [versions, setVersions] = useState([]);
  const [open, setOpen] = useState(false);
  useEffect(() => {
    api(`/flows/${flowKey}/versions`).then(setVersions).catch(() => setVersions([]));
  }, [flowKey, tick, open]);
  return (
    <section className="versions" data-testid="versions">
      <h4 onClick={() => setOpen(!open)} className="clickable">{open ? '▾' : '▸'} Versions ({versions.length})</h4>
      {open && (
        <ul>
          {[...versions].reverse().map((v) => (
            <li key={v.version} className={v.version === viewing ? 'current' : ''}>
              <button className="link" data-testid={`version-${v.version}`} onClick={() => onView(v.version)}>v{v.version}</button>{' '}
              {v.status}{v.current ? ' (live)' : ''} <span className="muted small">{(v.published_at || v.created_at || '').slice(0, 16).replace('T', ' ')}</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
