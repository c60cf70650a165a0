// A journey's report: the flow on a read-only canvas with the funnel on each node, the
// figures of the period, and the uplift against the holdout group with its verdict.
// Everything comes from GET /analytics/flows/{key} (docs/analytics.md).
import { useEffect, useMemo, useState } from 'react';
import { Background, Controls, ReactFlow, ReactFlowProvider } from '@xyflow/react';
import { api } from './api.js';
import { flowToCanvas } from './canvas.js';
import FlowNode from './FlowNode.jsx';
import { figureRows, money, nodeFunnel, percent, upliftRows } from './analytics.js';

const nodeTypes = { kaskad: FlowNode };

/** The per-node figures as a CSV file (fetched with the token, so not a plain link). */
async function downloadCsv(flowKey, query) {
  const text = await api(`/analytics/flows/${flowKey}?${query}&format=csv&section=nodes`, { raw: true });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
  a.download = `${flowKey}-nodes.csv`;
  a.click();
  URL.revokeObjectURL(a.href);
}

/** The period in the address (?from=&to=&group=), so a report can be shared; the API defaults to the last 30 days. */
export function usePeriod() {
  const q = new URLSearchParams(window.location.search);
  const [period, setPeriod] = useState({ from: q.get('from') || '', to: q.get('to') || '', group: q.get('group') || 'month' });
  const change = (next) => {
    const p = { ...period, ...next };
    const search = new URLSearchParams(Object.entries(p).filter(([, v]) => v));
    window.history.replaceState(null, '', `${window.location.pathname}?${search}`);
    setPeriod(p);
  };
  const query = new URLSearchParams(Object.entries(period).filter(([, v]) => v)).toString();
  return [period, change, query];
}

export function PeriodPicker({ period, onChange }) {
  return (
    <span className="row period">
      <label className="small">from <input type="date" data-testid="period-from" value={period.from} onChange={(e) => onChange({ from: e.target.value })} /></label>
      <label className="small">to <input type="date" data-testid="period-to" value={period.to} onChange={(e) => onChange({ to: e.target.value })} /></label>
      <select data-testid="period-group" value={period.group} onChange={(e) => onChange({ group: e.target.value })}>
        <option value="day">by day</option><option value="week">by week</option><option value="month">by month</option>
      </select>
    </span>
  );
}

function Uplift({ holdout }) {
  const rows = upliftRows(holdout);
  const t = holdout?.treatment || {};
  const c = holdout?.control || {};
  if (!c.entered) return <p className="muted small" data-testid="uplift-none">No holdout group in this period: add a split with a holdout path to measure what the journey caused.</p>;
  return (
    <div data-testid="uplift">
      <table className="figures">
        <thead><tr><th /><th className="num">entrants</th><th className="num">holdout</th></tr></thead>
        <tbody>
          <tr><td>Contacts</td><td className="num">{t.entered}</td><td className="num">{c.entered}</td></tr>
          <tr><td>Repeat-purchase rate</td><td className="num">{percent(t.repeat_purchase_rate)}</td><td className="num">{percent(c.repeat_purchase_rate)}</td></tr>
          <tr><td>Revenue per contact</td><td className="num">{money(t.revenue_per_contact)}</td><td className="num">{money(c.revenue_per_contact)}</td></tr>
        </tbody>
      </table>
      {rows.map((r) => (
        <div key={r.key} data-testid={`uplift-${r.key}`}>
          <div><b>{r.label}</b>: <span data-testid={`uplift-${r.key}-difference`}>{r.difference}</span>{' '}
            <span className="muted">(95% CI <span data-testid={`uplift-${r.key}-interval`}>{r.interval}</span>)</span></div>
          <p className={`verdict ${r.significant ? 'significant' : ''}`} data-testid={`uplift-${r.key}-verdict`}>{r.verdict}</p>
        </div>
      ))}
    </div>
  );
}

function ReportCanvas({ flow, kinds, funnel }) {
  const canvas = useMemo(() => flowToCanvas(flow, kinds), [flow, kinds]);
  const nodes = useMemo(() => canvas.nodes.map((n) => ({
    ...n, draggable: false, connectable: false,
    data: { ...n.data, funnel: funnel[n.id] || { reached: 0, converted: 0, sent: null, share: 0 } },
  })), [canvas, funnel]);
  const edges = useMemo(() => canvas.edges.map((e) => {
    const reached = funnel[e.target]?.reached;
    return { ...e, label: reached !== undefined ? String(reached) : undefined };
  }), [canvas, funnel]);
  return (
    <ReactFlow nodes={nodes} edges={edges} nodeTypes={nodeTypes} fitView fitViewOptions={{ maxZoom: 1 }}
      nodesDraggable={false} nodesConnectable={false} elementsSelectable={false} deleteKeyCode={null}>
      <Background /><Controls showInteractive={false} />
    </ReactFlow>
  );
}

export default function Report({ flowKey, catalog, navigate }) {
  const [period, setPeriod, query] = usePeriod();
  const [flow, setFlow] = useState(null);
  const [report, setReport] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => { api(`/flows/${flowKey}`).then(setFlow).catch((e) => setError(e.message)); }, [flowKey]);
  useEffect(() => {
    setError(null);
    api(`/analytics/flows/${flowKey}?${query}`).then(setReport).catch((e) => { setReport(null); setError(e.message); });
  }, [flowKey, query]);
  const funnel = useMemo(() => nodeFunnel(report), [report]);
  return (
    <div className="report" data-testid="report">
      <header className="toolbar">
        <a href={`/editor/flows/${flowKey}`} onClick={(e) => { e.preventDefault(); navigate(`/flows/${flowKey}`); }}>← Edit</a>
        <strong>Report: {flow?.name || flowKey}</strong>
        <span className="spacer" />
        <PeriodPicker period={period} onChange={setPeriod} />
        <button data-testid="report-csv" title="the figures per node as CSV" onClick={() => downloadCsv(flowKey, query)}>CSV per node</button>
      </header>
      {error && <p className="error message" data-testid="report-error">{error}</p>}
      <div className="report-body">
        <div className="canvas">{flow && report && <ReactFlowProvider><ReportCanvas flow={flow} kinds={catalog.node_kinds} funnel={funnel} /></ReactFlowProvider>}</div>
        <aside className="report-side">
          {!report ? <p className="muted">Loading the report…</p> : (
            <>
              <h3>Figures {report.from} – {report.to}</h3>
              <table className="figures" data-testid="figures">
                <tbody>
                  {figureRows(report.totals).map(([key, label, text]) => (
                    <tr key={key}><td>{label}</td><td className="num" data-testid={`figure-${key}`}>{text}</td></tr>
                  ))}
                </tbody>
              </table>
              <h3>Uplift against the holdout</h3>
              <Uplift holdout={report.holdout} />
              {report.paths?.length > 0 && (
                <>
                  <h3>Split paths</h3>
                  <table className="figures" data-testid="paths">
                    <thead><tr><th>path</th><th className="num">entered</th><th className="num">purchase rate</th><th className="num">revenue / contact</th></tr></thead>
                    <tbody>{report.paths.map((p) => (
                      <tr key={p.path}><td>{p.path}{p.holdout ? ' (holdout)' : ''}</td><td className="num">{p.entered}</td>
                        <td className="num">{percent(p.repeat_purchase_rate)}</td><td className="num">{money(p.revenue_per_contact)}</td></tr>
                    ))}</tbody>
                  </table>
                </>
              )}
              <p className="muted small">Figures are filed under the day each run entered and refreshed every few minutes
                {report.refreshed_at?.journeys_recent || report.refreshed_at?.journeys ? ` (last ${(report.refreshed_at.journeys_recent || report.refreshed_at.journeys).slice(0, 16).replace('T', ' ')})` : ''}.</p>
            </>
          )}
        </aside>
      </div>
    </div>
  );
}
