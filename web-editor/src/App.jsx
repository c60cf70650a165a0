// The editor's pages: sign-in with an API token, the list of flows, one flow.
// Routes live under /editor (the server answers index.html for every path there).
import { useCallback, useEffect, useState } from 'react';
import { api, getToken, setToken } from './api.js';
import Editor from './Editor.jsx';

const BASE = '/editor';
const route = () => window.location.pathname.replace(/^\/editor\/?/, '/').replace(/\/+$/, '') || '/';

function SignIn({ onSignedIn, problem }) {
  const [token, setText] = useState('');
  const [error, setError] = useState(problem);
  const submit = async (e) => {
    e.preventDefault();
    setToken(token.trim());
    try {
      onSignedIn(await api('/editor/session'));
    } catch (err) {
      setToken('');
      setError(err.status === 401 ? 'That token is unknown or revoked.' : err.message);
    }
  };
  return (
    <form className="page signin" onSubmit={submit} data-testid="signin">
      <h1>Kaskad editor</h1>
      <p>Sign in with an API token (role marketer or admin; an integrator token can edit drafts but not publish).</p>
      <input type="password" autoFocus data-testid="token" placeholder="API token" value={token} onChange={(e) => setText(e.target.value)} />
      <button type="submit" data-testid="signin-submit">Sign in</button>
      {error && <p className="error" data-testid="signin-error">{error}</p>}
      <p className="muted small">
        The server printed an admin token on first start (kept in <code>~/.kaskad/admin-token</code>);
        make one with <code>kaskad token create --role marketer</code>.
      </p>
    </form>
  );
}

const BLANK = (key, name) => ({ schema: 'kaskad.flow/1', key, name, entry: { kind: 'api' }, nodes: [] });

function FlowList({ navigate, session }) {
  const [flows, setFlows] = useState(null);
  const [key, setKey] = useState('');
  const [name, setName] = useState('');
  const [error, setError] = useState(null);
  useEffect(() => { api('/flows').then(setFlows).catch((e) => setError(e.message)); }, []);
  const create = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      await api('/flows', { method: 'POST', body: BLANK(key.trim(), name.trim() || key.trim()) });
      navigate(`/flows/${key.trim()}`);
    } catch (err) { setError(err.message); }
  };
  const importFile = async (file) => {
    setError(null);
    try {
      const text = await file.text();
      const doc = JSON.parse(text);
      await api('/flows', { method: 'POST', body: text });
      navigate(`/flows/${doc.key}`);
    } catch (err) { setError(`Import of ${file.name} failed: ${err.message}`); }
  };
  return (
    <div className="page">
      <h1>Flows</h1>
      <p className="muted small">Signed in as {session.role}. <a href="#" onClick={(e) => { e.preventDefault(); setToken(''); window.location.reload(); }}>Sign out</a></p>
      {error && <p className="error" data-testid="list-error">{error}</p>}
      {!flows ? <p className="muted">Loading…</p> : (
        <table className="flows" data-testid="flow-list">
          <thead><tr><th>Flow</th><th>Key</th><th>Live version</th><th>Newest</th></tr></thead>
          <tbody>
            {flows.map((f) => (
              <tr key={f.key}>
                <td><a href={`${BASE}/flows/${f.key}`} data-testid={`open-${f.key}`} onClick={(e) => { e.preventDefault(); navigate(`/flows/${f.key}`); }}>{f.name}</a></td>
                <td><code>{f.key}</code></td>
                <td>{f.current_version ?? '—'}</td>
                <td>v{f.latest_version} {f.latest_status}</td>
              </tr>
            ))}
            {!flows.length && <tr><td colSpan={4} className="muted">No flows yet.</td></tr>}
          </tbody>
        </table>
      )}
      <form className="row" onSubmit={create} data-testid="new-flow">
        <input placeholder="key, e.g. winback" value={key} onChange={(e) => setKey(e.target.value)} data-testid="new-key" pattern="[a-z0-9][a-z0-9_\-]{0,119}" required />
        <input placeholder="name" value={name} onChange={(e) => setName(e.target.value)} data-testid="new-name" />
        <button type="submit" data-testid="create">New flow</button>
        <label className="button">Import JSON…<input type="file" accept="application/json,.json" hidden data-testid="import-list"
          onChange={(e) => { if (e.target.files[0]) importFile(e.target.files[0]); e.target.value = ''; }} /></label>
      </form>
    </div>
  );
}

export default function App() {
  const [path, setPath] = useState(route());
  const [session, setSession] = useState(null);
  const [catalog, setCatalog] = useState(null);
  const [problem, setProblem] = useState(null);
  const navigate = useCallback((to) => { window.history.pushState(null, '', `${BASE}${to === '/' ? '/' : to}`); setPath(route()); }, []);
  useEffect(() => {
    const onPop = () => setPath(route());
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);
  useEffect(() => {
    if (!getToken() || session) return;
    api('/editor/session').then(setSession).catch((e) => { setToken(''); setProblem(e.status === 401 ? 'Your token is no longer valid; sign in again.' : e.message); });
  }, [session]);
  useEffect(() => { if (session && !catalog) api('/catalog').then(setCatalog).catch((e) => setProblem(e.message)); }, [session, catalog]);

  if (!session) return getToken() && !problem ? <div className="page muted">Signing in…</div> : <SignIn onSignedIn={setSession} problem={problem} />;
  if (!catalog) return <div className="page muted">{problem || 'Loading the catalog…'}</div>;
  const m = path.match(/^\/flows\/([^/]+)$/);
  if (m) return <Editor flowKey={decodeURIComponent(m[1])} catalog={catalog} session={session} navigate={navigate} />;
  return <FlowList navigate={navigate} session={session} />;
}
