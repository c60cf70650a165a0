// The base-health page: the marketer's regular review of the whole base, from
// GET /analytics/base (docs/analytics.md). Each chart has its numbers in a table
// under it (open by default: for screen readers, and to read exact figures).
import { lazy, Suspense, useEffect, useMemo, useState } from 'react';
import { api } from './api.js';
import { baseCharts, cell } from './analytics.js';
import { PeriodPicker, usePeriod } from './Report.jsx';

// chart.js comes in its own chunk, fetched when this page opens.
const ChartView = lazy(() => import('./Charts.jsx'));

function ChartCard({ chart }) {
  const empty = !chart.labels.length || !chart.series.length;
  return (
    <section className="chart-card" data-testid={`card-${chart.id}`}>
      <h3>{chart.title}</h3>
      {empty ? <p className="muted small">No data in this period yet.</p> : (
        <>
          <Suspense fallback={<div className="chart-box muted">Loading the chart…</div>}><ChartView chart={chart} /></Suspense>
          <details open>
            <summary className="small muted">the numbers</summary>
            <table className="figures" data-testid={`table-${chart.id}`}>
              <thead><tr><th />{chart.series.map((s) => <th key={s.label} className="num">{s.label}</th>)}</tr></thead>
              <tbody>
                {chart.labels.map((label, i) => (
                  <tr key={label}><td>{label}</td>{chart.series.map((s) => <td key={s.label} className="num">{cell(chart, s.data[i])}</td>)}</tr>
                ))}
              </tbody>
            </table>
          </details>
        </>
      )}
    </section>
  );
}

export default function Health({ navigate }) {
  const [period, setPeriod, query] = usePeriod();
  const [base, setBase] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    setError(null);
    api(`/analytics/base?${query}`).then(setBase).catch((e) => { setBase(null); setError(e.message); });
  }, [query]);
  const charts = useMemo(() => (base ? baseCharts(base) : []), [base]);
  return (
    <div className="page health" data-testid="health">
      <p><a href="/editor/" onClick={(e) => { e.preventDefault(); navigate('/'); }}>← Flows</a></p>
      <h1>Base health</h1>
      <PeriodPicker period={period} onChange={setPeriod} />
      {error && <p className="error" data-testid="health-error">{error}</p>}
      {!base && !error && <p className="muted">Loading…</p>}
      {base && (
        <>
          <p className="muted small">Base {base.from} – {base.to}; refreshed hourly{base.refreshed_at?.base ? ` (last ${base.refreshed_at.base.slice(0, 16).replace('T', ' ')})` : ''}.
            RFM segments and the churned share come from daily snapshots.</p>
          <div className="charts">{charts.map((c) => <ChartCard key={c.id} chart={c} />)}</div>
        </>
      )}
    </div>
  );
}
