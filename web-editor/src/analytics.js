// Pure shaping of the analytics API's answers (GET /analytics/flows/{key}, /analytics/base)
// into what the report and base-health pages draw. No React, no fetch: unit-tested in
// test/analytics.test.js.

/** A money figure as the API sends it ("190.00", a string) or null → "190.00" / "—". */
export const money = (v) => (v === null || v === undefined ? '—' : Number(v).toFixed(2));
/** A ratio (0.5) → "50.0%"; null → "—". */
export const percent = (v) => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(1)}%`);
/** ROI is a ratio too (6.55 = +655%), said with its sign. */
export const roi = (v) => (v === null || v === undefined ? '—' : `${v >= 0 ? '+' : ''}${(v * 100).toFixed(0)}%`);
const count = (v) => (v === null || v === undefined ? '0' : String(v));

/** The figures of a journey report's totals, in the order a marketer reads them: [key, label, text]. */
export function figureRows(totals = {}) {
  return [
    ['entered', 'Entered', count(totals.entered)],
    ['sent', 'Sent', count(totals.sent)],
    ['delivered', 'Delivered', count(totals.delivered)],
    ['opened', 'Opened', count(totals.opened)],
    ['clicked', 'Clicked', count(totals.clicked)],
    ['converted', 'Converted', count(totals.converted)],
    ['conversion_rate', 'Conversion rate', percent(totals.conversion_rate)],
    ['revenue', 'Revenue', money(totals.revenue)],
    ['cost', 'Cost', money(totals.cost)],
    ['roi', 'ROI', roi(totals.roi)],
    ['cost_per_conversion', 'Cost per conversion', money(totals.cost_per_conversion)],
  ];
}

/**
 * The funnel per node for the canvas: node id → {reached, converted, conversion_rate,
 * revenue, sent, share} where `share` is reached / the flow's entered (how far into the
 * journey the runs got), and `sent` sums the node's messages over its channels.
 */
export function nodeFunnel(report) {
  const entered = report?.totals?.entered || 0;
  const sent = {};
  for (const m of report?.messages || []) sent[m.node] = (sent[m.node] || 0) + (m.sent || 0);
  const out = {};
  for (const n of report?.nodes || []) {
    out[n.node] = {
      reached: n.reached || 0,
      converted: n.converted || 0,
      conversion_rate: n.conversion_rate ?? null,
      revenue: n.revenue ?? null,
      sent: sent[n.node] ?? null,
      share: entered ? (n.reached || 0) / entered : null,
    };
  }
  return out;
}

const signed = (v, unit) => (unit === 'pp' ? `${v >= 0 ? '+' : ''}${(v * 100).toFixed(1)} pp` : `${v >= 0 ? '+' : ''}${Number(v).toFixed(2)}`);

/** Uplift comparisons (entrants vs holdout) as rows: [metric, label, difference, interval, verdict, significant]. */
export function upliftRows(holdout) {
  const u = holdout?.uplift || {};
  const rows = [];
  for (const [key, label, unit] of [['repeat_purchase_rate', 'Repeat-purchase rate', 'pp'], ['revenue_per_contact', 'Revenue per contact', 'money']]) {
    const x = u[key];
    if (!x || x.difference === null || x.difference === undefined) continue;
    const interval = x.ci_low === null || x.ci_low === undefined ? '—' : `${signed(x.ci_low, unit)} to ${signed(x.ci_high, unit)}`;
    rows.push({ key, label, difference: signed(x.difference, unit), interval, verdict: x.verdict || '', significant: !!x.significant });
  }
  return rows;
}

const num = (v) => (v === null || v === undefined ? null : Number(v));

/**
 * The base-health charts: each {id, title, kind, labels, series: [{label, data}]} where every
 * series has one number (or null) per label. Tables next to the charts show the same numbers.
 */
export function baseCharts(base) {
  const series = base?.series || [];
  const periods = series.map((r) => r.period);
  const snaps = base?.snapshots || [];
  const days = snaps.map((s) => s.day);
  const segmentNames = [...new Set(snaps.flatMap((s) => Object.keys(s.segments || {})))].sort();

  const cohorts = [...new Set((base?.cohorts || []).map((c) => c.cohort))].sort();
  const ages = [...new Set((base?.cohorts || []).map((c) => c.age))].sort((a, b) => a - b);
  const ltv = {};
  for (const c of base?.cohorts || []) (ltv[c.cohort] ||= {})[c.age] = num(c.ltv);

  const fatigue = base?.fatigue || [];
  const buckets = [...new Set(fatigue.map((f) => f.received_per_week))]
    .sort((a, b) => parseInt(a, 10) - parseInt(b, 10));
  const channels = [...new Set(fatigue.map((f) => f.channel))].sort();
  const rate = {};
  for (const f of fatigue) (rate[f.channel] ||= {})[f.received_per_week] = num(f.unsubscribe_rate);

  return [
    { id: 'base-size', title: 'Base size', kind: 'line', labels: periods,
      series: [{ label: 'contacts', data: series.map((r) => num(r.contacts)) }] },
    { id: 'segments', title: 'RFM segments over time', kind: 'bar', stacked: true, labels: days,
      series: segmentNames.map((name) => ({ label: name, data: snaps.map((s) => num(s.segments?.[name] ?? 0)) })) },
    { id: 'customers', title: 'New vs returning customers', kind: 'bar', stacked: true, labels: periods,
      series: [{ label: 'new', data: series.map((r) => num(r.new_customers)) },
               { label: 'returning', data: series.map((r) => num(r.returning_customers)) }] },
    { id: 'average-check', title: 'Average check', kind: 'line', labels: periods,
      series: [{ label: 'average check', data: series.map((r) => num(r.average_check)) }] },
    { id: 'ltv', title: 'LTV per cohort (by month since the first order)', kind: 'line', labels: ages.map((a) => `month ${a}`),
      series: cohorts.map((c) => ({ label: c, data: ages.map((a) => ltv[c][a] ?? null) })) },
    { id: 'churned', title: 'Churned share', kind: 'line', percent: true, labels: days,
      series: [{ label: 'churned share', data: snaps.map((s) => num(s.churned_share)) }] },
    { id: 'fatigue', title: 'Unsubscribe rate vs messages per week', kind: 'bar', percent: true, labels: buckets.map((b) => `${b}/week`),
      series: channels.map((ch) => ({ label: ch, data: buckets.map((b) => rate[ch][b] ?? null) })) },
  ];
}

/** A chart's number as its table shows it. */
export function cell(chart, v) {
  if (v === null || v === undefined) return '—';
  if (chart.percent) return percent(v);
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}
