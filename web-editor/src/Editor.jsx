// One flow in the editor: palette, canvas, property panel, toolbar.
// The flow JSON (with undo history) is the state; the canvas is derived from it
// by flowToCanvas and edits go back through canvasToFlow (src/canvas.js).
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import {
  ReactFlow, ReactFlowProvider, Background, Controls, MiniMap, applyNodeChanges, useReactFlow,
} from '@xyflow/react';
import FlowNode from './FlowNode.jsx';
import Panel from './Panel.jsx';
import { canvasToFlow, deleteNodes, flowToCanvas, renameNode } from './canvas.js';
import { commit, emptyHistory, redo, undo } from './history.js';
import { copiesOf, newNode } from './nodes.js';
import { api } from './api.js';
import { useAutosave, pendingKey } from './autosave.js';
import { Versions, TestMode, useStats } from './Watch.jsx';

const nodeTypes = { kaskad: FlowNode };
const typing = (el) => el && (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT' || el.isContentEditable);

function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  const a = document.createElement('a');
  a.href = url; a.download = name; a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function Palette({ kinds, onAdd }) {
  return (
    <nav className="palette" data-testid="palette">
      <h4>Nodes</h4>
      {kinds.map((k) => (
        <div key={k.kind} className={`palette-item kind-${k.kind}`} data-kind={k.kind} draggable title={k.description}
          onDragStart={(e) => { e.dataTransfer.setData('application/kaskad-kind', k.kind); e.dataTransfer.effectAllowed = 'move'; }}
          onDoubleClick={() => onAdd(k.kind)}>
          {k.title}
        </div>
      ))}
      <p className="muted small">Drag onto the canvas (or double-click).</p>
    </nav>
  );
}

function Problems({ errors, onPick }) {
  const flowLevel = errors.filter((e) => !e.node);
  const nodeLevel = errors.filter((e) => e.node);
  if (!errors.length) return <div className="problems ok" data-testid="problems">No problems: ready to publish.</div>;
  return (
    <div className="problems" data-testid="problems">
      {flowLevel.map((e, i) => <div key={`f${i}`} className="flow-error" data-testid="flow-error"><code>{e.path || 'flow'}</code> {e.message}</div>)}
      {nodeLevel.length > 0 && (
        <details open>
          <summary>{nodeLevel.length} problem(s) on nodes</summary>
          <ul>
            {nodeLevel.map((e, i) => (
              <li key={i}><a href="#" data-testid="problem" onClick={(ev) => { ev.preventDefault(); onPick(e.node); }}>
                <b>{e.node}</b></a> <code>{e.path}</code> {e.message}</li>
            ))}
          </ul>
        </details>
      )}
    </div>
  );
}

function Canvas({ flowKey, initial, catalog, session, onExit }) {
  const kinds = catalog.node_kinds;
  const [hist, setHist] = useState(() => emptyHistory(initial.flow));
  const flow = hist.present;
  const [viewing, setViewing] = useState(null); // {version, flow}: a read-only look at an older version
  const shown = viewing ? viewing.flow : flow;
  const readOnly = !!viewing;
  const [selected, setPanelNode] = useState(null); // the node whose form is open
  const [picked, setPicked] = useState(new Set()); // every selected node (copy, delete)
  const setSelected = useCallback((id) => { setPanelNode(id); setPicked(new Set(id ? [id] : [])); }, []);
  const [message, setMessage] = useState(null);
  const [testPath, setTestPath] = useState(null);
  const clipboard = useRef(null);
  const [versionsTick, setVersionsTick] = useState(0);
  const bumpVersions = () => setVersionsTick((t) => t + 1);
  const rf = useReactFlow();
  // Nodes off screen are not drawn (onlyRenderVisibleElements), so fitting counts their declared size.
  const fit = useCallback((opts = {}) => rf.fitView({ includeHiddenNodes: true, maxZoom: 1, minZoom: 0.1, ...opts }), [rf]);
  const { status, errors, flush } = useAutosave(flowKey, flow, initial.saved);
  const stats = useStats(flowKey);

  const change = useCallback((next, tag = null) => setHist((h) => commit(h, typeof next === 'function' ? next(h.present) : next, tag)), []);

  const canvas = useMemo(() => flowToCanvas(shown, kinds), [shown, kinds]);
  const errorsByNode = useMemo(() => {
    const m = {};
    if (!readOnly) for (const e of errors) if (e.node) (m[e.node] ||= []).push(e);
    return m;
  }, [errors, readOnly]);
  const onPath = useMemo(() => new Set((testPath?.path || []).map((s) => s.node)), [testPath]);

  // React Flow keeps its own copy of the nodes while dragging; it is re-derived whenever the flow changes.
  // A node whose content did not change keeps its object, so only changed nodes re-render (200-node flows).
  const [rfNodes, setRfNodes] = useState([]);
  const previous = useRef(new Map());
  useEffect(() => {
    const before = previous.current;
    const next = canvas.nodes.map((n) => {
      const errs = errorsByNode[n.id];
      const nodeStats = stats.data?.nodes?.[n.id];
      const sig = `${JSON.stringify(errs || null)}|${JSON.stringify(nodeStats || null)}|${onPath.has(n.id)}|${picked.has(n.id)}`;
      const old = before.get(n.id);
      if (old && old.data.node === n.data.node && old.sig === sig && old.position.x === n.position.x && old.position.y === n.position.y) return old;
      return { ...n, sig, selected: picked.has(n.id), data: { ...n.data, errors: errs, stats: nodeStats, onPath: onPath.has(n.id) } };
    });
    previous.current = new Map(next.map((n) => [n.id, n]));
    setRfNodes((current) => {
      // Keep what React Flow measured (width, height) on nodes it already knows.
      const measured = new Map(current.map((n) => [n.id, n]));
      return next.map((n) => {
        const m = measured.get(n.id);
        return m && m.measured && !n.measured ? Object.assign(n, { measured: m.measured }) : n;
      });
    });
  }, [canvas, picked, errorsByNode, stats.data, onPath]);
  // Fit the flow on screen once its nodes are first on the canvas (React Flow's own fitView
  // waits for every node to be measured, which never happens for nodes drawn only when visible).
  const fitted = useRef(initial.flow.nodes.length === 0); // an empty canvas stays where the first drop lands
  useEffect(() => {
    if (fitted.current || !rfNodes.length) return;
    fitted.current = true;
    requestAnimationFrame(() => fit());
  }, [rfNodes, fit]);
  const [selectedEdges, setSelectedEdges] = useState(new Set());
  const rfEdges = useMemo(() => canvas.edges.map((e) => {
    const walked = testPath?.path?.some((s, i) => s.node === e.source && s.port === e.data.port && testPath.path[i + 1]?.node === e.target);
    const count = stats.data?.nodes?.[e.source]?.ports?.[e.data.port];
    return {
      ...e,
      selected: selectedEdges.has(e.id),
      animated: !!walked,
      className: walked ? 'on-path' : undefined,
      label: count !== undefined ? String(count) : undefined,
    };
  }), [canvas, selectedEdges, testPath, stats.data]);

  const commitCanvas = (nodes, edges) => change(canvasToFlow({ nodes, edges }, flow, kinds));

  const onNodesChange = (changes) => {
    setRfNodes((ns) => applyNodeChanges(changes, ns));
    const selects = changes.filter((c) => c.type === 'select');
    if (!selects.length) return;
    setPicked((old) => {
      const next = new Set(old);
      for (const c of selects) (c.selected ? next.add(c.id) : next.delete(c.id));
      return next;
    });
    const chosen = selects.filter((c) => c.selected);
    if (chosen.length) setPanelNode(chosen[chosen.length - 1].id);
  };
  const onNodeDragStop = (_, __, dragged) => {
    if (readOnly) return;
    const moved = new Map(dragged.map((n) => [n.id, n.position]));
    commitCanvas(rfNodes.map((n) => (moved.has(n.id) ? { ...n, position: moved.get(n.id), dragged: true } : n)), canvas.edges);
  };
  const onEdgesChange = (changes) => {
    const sel = new Set(selectedEdges);
    for (const c of changes) if (c.type === 'select') (c.selected ? sel.add(c.id) : sel.delete(c.id));
    setSelectedEdges(sel);
  };
  // One undo step for a deletion, however many nodes and edges it takes along.
  const onDelete = ({ nodes: goneNodes, edges: goneEdges }) => {
    if (readOnly) return;
    let next = deleteNodes(flow, goneNodes.map((n) => n.id), kinds);
    const goneIds = new Set(goneEdges.map((e) => e.id));
    const c = flowToCanvas(next, kinds);
    next = canvasToFlow({ nodes: c.nodes, edges: c.edges.filter((e) => !goneIds.has(e.id)) }, next, kinds);
    change(next);
    if (goneNodes.some((n) => n.id === selected)) setSelected(null);
    setSelectedEdges(new Set());
  };
  const onConnect = ({ source, sourceHandle, target }) => {
    if (readOnly || source === target) return;
    const others = canvas.edges.filter((e) => !(e.source === source && e.sourceHandle === sourceHandle));
    commitCanvas(canvas.nodes, [...others, { id: `${source}:${sourceHandle}`, source, sourceHandle, target, data: { port: sourceHandle } }]);
  };

  const addNode = (kind, position) => {
    const info = kinds.find((k) => k.kind === kind);
    if (!info || readOnly) return;
    const node = newNode(info, new Set(flow.nodes.map((n) => n.id)), catalog);
    const pos = position || rf.screenToFlowPosition({ x: window.innerWidth / 2, y: window.innerHeight / 2 });
    change({ ...flow, nodes: [...flow.nodes, node], layout: { ...(flow.layout || {}), [node.id]: { x: Math.round(pos.x), y: Math.round(pos.y) } } });
    setSelected(node.id);
  };
  const onDrop = (e) => {
    e.preventDefault();
    const kind = e.dataTransfer.getData('application/kaskad-kind');
    if (kind) addNode(kind, rf.screenToFlowPosition({ x: e.clientX, y: e.clientY }));
  };

  const selectedIds = () => [...picked];
  const copy = () => {
    const ids = new Set(selectedIds());
    if (!ids.size) return;
    clipboard.current = { nodes: flow.nodes.filter((n) => ids.has(n.id)), layout: flow.layout || {} };
    setMessage(`Copied ${ids.size} node(s).`);
  };
  const paste = () => {
    if (!clipboard.current || readOnly) return;
    const { nodes, map } = copiesOf(clipboard.current.nodes, flow.nodes.map((n) => n.id), kinds);
    const layout = { ...(flow.layout || {}) };
    clipboard.current.nodes.forEach((n, i) => {
      const p = clipboard.current.layout[n.id] || { x: i * 40, y: 0 };
      layout[map[n.id]] = { x: p.x + 40, y: p.y + 40 };
    });
    change({ ...flow, nodes: [...flow.nodes, ...nodes], layout });
    setSelected(nodes[0]?.id || null);
  };
  // dagre is loaded on first use: it is a third of the bundle and most sessions never auto-layout.
  const layoutAll = async () => {
    const { autoLayout } = await import('./layout.js');
    const current = live.current.flow;
    change({ ...current, layout: autoLayout(current, kinds) });
    setTimeout(() => fit({ duration: 200 }), 50);
  };

  useEffect(() => {
    const onKey = (e) => {
      if (typing(document.activeElement)) return;
      const mod = e.ctrlKey || e.metaKey;
      const k = e.key.toLowerCase();
      if (mod && k === 'z' && !e.shiftKey) { e.preventDefault(); setHist(undo); }
      else if (mod && (k === 'y' || (k === 'z' && e.shiftKey))) { e.preventDefault(); setHist(redo); }
      else if (mod && k === 'c') copy();
      else if (mod && k === 'v') paste();
      else if (mod && k === 's') { e.preventDefault(); flush(); }
      else if (!mod && k === 'l') layoutAll();
      else if (!mod && k === 'f') fit({ duration: 200 });
      else if (k === 'escape') setSelected(null);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  });

  const selectedNode = selected ? shown.nodes.find((n) => n.id === selected) : null;
  // Stable callbacks (reading the latest state through a ref) let the panel skip renders while dragging.
  const live = useRef();
  live.current = { flow, selected };
  const onNodeChange = useCallback((node, tag) => {
    const id = live.current.selected;
    change((f) => ({ ...f, nodes: f.nodes.map((n) => (n.id === id ? node : n)) }), tag);
  }, [change]);
  const onRename = useCallback((to) => {
    const { flow: f, selected: from } = live.current;
    if (!/^[A-Za-z][A-Za-z0-9_-]{0,63}$/.test(to)) { setMessage(`"${to}" is not a node id: a letter, then letters, digits, - or _`); return; }
    if (f.nodes.some((n) => n.id === to)) { setMessage(`There is already a node "${to}".`); return; }
    change(renameNode(f, from, to, kinds)); setSelected(to);
  }, [change, kinds, setSelected]);
  const publish = async () => {
    setMessage(null);
    try {
      const saved = await flush();
      if (saved && !saved.valid) { setMessage('Fix the problems listed above before publishing.'); return; }
      const r = await api(`/flows/${flowKey}/publish`, { method: 'POST' });
      setMessage(`Published version ${r.version}.`);
      bumpVersions();
    } catch (e) {
      setMessage(e.status === 403 ? `Not published: ${e.message}` : `Not published: ${e.message}`);
    }
  };
  const exportJson = async () => {
    await flush();
    const text = await api(`/flows/${flowKey}${viewing ? `?version=${viewing.version}` : ''}`, { raw: true });
    download(`${flowKey}${viewing ? `-v${viewing.version}` : ''}.json`, text);
  };
  const importFile = async (file) => {
    const text = await file.text();
    let doc;
    try { doc = JSON.parse(text); } catch (e) { setMessage(`${file.name} is not JSON: ${e.message}`); return; }
    if (doc.key && doc.key !== flowKey) {
      try { await api('/flows', { method: 'POST', body: text }); onExit(`/flows/${doc.key}`); } catch (e) { setMessage(`Import failed: ${e.message}`); }
      return;
    }
    change({ ...doc, key: flowKey });
    setMessage(`Imported ${file.name} into this draft (undo brings the previous one back).`);
  };

  return (
    <div className="editor">
      <header className="toolbar">
        <a href="/editor/" onClick={(e) => { e.preventDefault(); onExit('/'); }}>← Flows</a>
        <strong data-testid="flow-name">{shown.name}</strong>
        <span className={`save-status ${status.state}`} data-testid="save-status">{status.text}</span>
        <span className="spacer" />
        <button onClick={() => setHist(undo)} disabled={!hist.past.length || readOnly} title="Ctrl+Z">Undo</button>
        <button onClick={() => setHist(redo)} disabled={!hist.future.length || readOnly} title="Ctrl+Shift+Z">Redo</button>
        <button onClick={copy} title="Ctrl+C">Copy</button>
        <button onClick={paste} disabled={readOnly} title="Ctrl+V">Paste</button>
        <button onClick={layoutAll} disabled={readOnly} title="L" data-testid="auto-layout">Auto-layout</button>
        <button onClick={() => fit({ duration: 200 })} title="F">Fit</button>
        <label className="button">Import<input type="file" accept="application/json,.json" hidden data-testid="import-file"
          onChange={(e) => { if (e.target.files[0]) importFile(e.target.files[0]); e.target.value = ''; }} /></label>
        <button onClick={exportJson} data-testid="export">Export</button>
        <button onClick={publish} data-testid="publish" disabled={readOnly || errors.length > 0 || !session.can_publish}
          title={!session.can_publish ? `a ${session.role} token cannot publish` : errors.length ? 'fix the problems first' : 'publish this draft'}>Publish</button>
      </header>
      {message && <div className="message" data-testid="message" onClick={() => setMessage(null)}>{message}</div>}
      {viewing && (
        <div className="viewing" data-testid="viewing">
          Viewing version {viewing.version} (read-only).
          <button onClick={async () => {
            await api(`/flows/${flowKey}/versions/${viewing.version}/restore`, { method: 'POST' });
            const restored = JSON.parse(await api(`/flows/${flowKey}`, { raw: true }));
            setViewing(null); change(restored); localStorage.removeItem(pendingKey(flowKey));
            setMessage(`Version ${viewing.version} restored into a new draft.`);
            bumpVersions();
          }} data-testid="restore">Restore into a new draft</button>
          <button onClick={() => setViewing(null)}>Back to the draft</button>
        </div>
      )}
      {!readOnly && <Problems errors={errors} onPick={(id) => { setSelected(id); const n = rfNodes.find((x) => x.id === id); if (n) rf.setCenter(n.position.x + 95, n.position.y + 35, { duration: 200, zoom: rf.getZoom() }); }} />}
      <div className="workspace">
        <Palette kinds={kinds} onAdd={(k) => addNode(k)} />
        <div className="canvas" onDragOver={(e) => { e.preventDefault(); e.dataTransfer.dropEffect = 'move'; }} onDrop={onDrop} data-testid="canvas">
          <ReactFlow nodes={rfNodes} edges={rfEdges} nodeTypes={nodeTypes}
            onNodesChange={onNodesChange} onEdgesChange={onEdgesChange} onConnect={onConnect}
            onNodeDragStop={onNodeDragStop} onDelete={onDelete}
            onPaneClick={() => setSelected(null)}
            nodesDraggable={!readOnly} nodesConnectable={!readOnly} elementsSelectable
            deleteKeyCode={readOnly ? null : ['Delete', 'Backspace']} minZoom={0.1} onlyRenderVisibleElements
            proOptions={{ hideAttribution: true }}>
            <Background gap={20} />
            <Controls showInteractive={false} />
            <MiniMap pannable zoomable />
          </ReactFlow>
          {stats.note && <div className="stats-note" data-testid="stats-note">{stats.note}</div>}
        </div>
        <div className="side">
          <Panel flow={selectedNode ? null : shown} node={selectedNode} catalog={catalog} errors={errors} readOnly={readOnly}
            onNodeChange={onNodeChange} onRename={onRename} onFlowChange={change} />
          <TestMode flowKey={flowKey} flow={flow} onResult={setTestPath} />
          <Versions flowKey={flowKey} tick={versionsTick} viewing={viewing?.version} onView={async (v) => {
            const text = await api(`/flows/${flowKey}?version=${v}`, { raw: true });
            setViewing({ version: v, flow: JSON.parse(text) }); setSelected(null);
          }} />
        </div>
      </div>
    </div>
  );
}

/** Load the newest version (or the unsaved copy kept in this browser) and open it. */
export default function Editor({ flowKey, catalog, session, navigate }) {
  const [initial, setInitial] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let cancelled = false;
    (async () => {
      try {
        const text = await api(`/flows/${flowKey}`, { raw: true });
        const server = JSON.parse(text);
        const pending = localStorage.getItem(pendingKey(flowKey));
        // A draft this browser did not manage to save wins over the server's copy: work is never lost.
        const flow = pending ? JSON.parse(pending) : server;
        if (!cancelled) setInitial({ flow, saved: pending ? null : server });
      } catch (e) {
        if (!cancelled) setError(e.status === 404 ? `There is no flow "${flowKey}".` : e.message);
      }
    })();
    return () => { cancelled = true; };
  }, [flowKey]);
  if (error) return <div className="page"><p className="error">{error}</p><a href="/editor/" onClick={(e) => { e.preventDefault(); navigate('/'); }}>Back to the flows</a></div>;
  if (!initial) return <div className="page muted">Loading…</div>;
  return (
    <ReactFlowProvider>
      <Canvas key={flowKey} flowKey={flowKey} initial={initial} catalog={catalog} session={session} onExit={navigate} />
    </ReactFlowProvider>
  );
}
