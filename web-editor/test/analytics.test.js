import { describe, expect, it } from 'vitest';
import { baseCharts, cell, figureRows, money, nodeFunnel, percent, roi, upliftRows } from '../src/analytics.js';

// Shapes as docs/analytics.md shows them (the winback cascade and the promo split).
const WINBACK = {
  totals: { entered: 6, converted: 3, conversion_rate: 0.5, revenue: '190.00', sent: 7, delivered: 5, opened: 2, clicked: 1,
    cost: '25.15', roi: 6.554672, cost_per_conversion: '8.38' },
  nodes: [{ node: 'mail', reached: 6, converted: 3, conversion_rate: 0.5, revenue: '190.00' },
          { node: 'wait', reached: 5, converted: 2, conversion_rate: 0.4, revenue: '150.00' }],
  messages: [{ node: 'mail', channel: 'email', sent: 5 }, { node: 'mail', channel: 'sms', sent: 2 }],
};

describe('journey report shaping', () => {
  it('lists the figures in reading order, formatted', () => {
    const rows = Object.fromEntries(figureRows(WINBACK.totals).map(([k, , text]) => [k, text]));
    expect(rows).toEqual({ entered: '6', sent: '7', delivered: '5', opened: '2', clicked: '1', converted: '3',
      conversion_rate: '50.0%', revenue: '190.00', cost: '25.15', roi: '+655%', cost_per_conversion: '8.38' });
    expect(figureRows({}).find(([k]) => k === 'roi')[2]).toBe('—'); // no cost: no ROI, not 0
  });

  it('gives each node its funnel: reached, converted, sent over its channels, share of the entrants', () => {
    const f = nodeFunnel(WINBACK);
    expect(f.mail).toEqual({ reached: 6, converted: 3, conversion_rate: 0.5, revenue: '190.00', sent: 7, share: 1 });
    expect(f.wait.sent).toBeNull();
    expect(f.wait.share).toBeCloseTo(5 / 6);
    expect(nodeFunnel(null)).toEqual({});
  });

  it('says the uplift with its interval in the right unit and keeps the verdict', () => {
    const rows = upliftRows({ uplift: {
      repeat_purchase_rate: { difference: 0.25, ci_low: -0.029767, ci_high: 0.529767, significant: false, verdict: 'Not significant yet: …' },
      revenue_per_contact: { difference: 16.0, ci_low: 0.76, ci_high: 31.24, significant: true, verdict: 'The journey raised …' },
    } });
    expect(rows.map((r) => [r.difference, r.interval, r.significant])).toEqual([
      ['+25.0 pp', '-3.0 pp to +53.0 pp', false],
      ['+16.00', '+0.76 to +31.24', true],
    ]);
    expect(upliftRows({ uplift: { repeat_purchase_rate: { difference: null } } })).toEqual([]);
  });

  it('formats missing figures as a dash', () => {
    expect([money(null), percent(undefined), roi(null)]).toEqual(['—', '—', '—']);
    expect([money('3'), percent(0.0371), roi(-0.5)]).toEqual(['3.00', '3.7%', '-50%']);
  });
});

describe('base-health charts', () => {
  const BASE = {
    series: [
      { period: '2026-01-01', contacts: 40, new_customers: 2, returning_customers: 0, average_check: '60.00' },
      { period: '2026-02-01', contacts: 40, new_customers: 1, returning_customers: 1, average_check: '50.00' },
    ],
    snapshots: [
      { day: '2026-04-01', churned_share: 0, segments: { champions: 3, lost: 1 } },
      { day: '2026-04-02', churned_share: 0.05, segments: { champions: 4 } },
    ],
    cohorts: [
      { cohort: '2026-02', age: 0, ltv: '50.00' },
      { cohort: '2026-01', age: 0, ltv: '60.00' }, { cohort: '2026-01', age: 1, ltv: '85.00' },
    ],
    fatigue: [
      { channel: 'email', received_per_week: '5+', unsubscribe_rate: 0 },
      { channel: 'email', received_per_week: '1', unsubscribe_rate: 0.037037 },
      { channel: 'sms', received_per_week: '1', unsubscribe_rate: 0 },
    ],
  };
  const charts = Object.fromEntries(baseCharts(BASE).map((c) => [c.id, c]));

  it('has one series per label for every chart', () => {
    for (const c of Object.values(charts)) for (const s of c.series) expect(s.data).toHaveLength(c.labels.length);
  });

  it('puts the numbers where they belong', () => {
    expect(charts['base-size'].series[0].data).toEqual([40, 40]);
    expect(charts.customers.series.map((s) => s.data)).toEqual([[2, 1], [0, 1]]);
    expect(charts['average-check'].series[0].data).toEqual([60, 50]);
    // a segment missing from a snapshot is 0 on that day, not a gap
    expect(charts.segments.stacked).toBe(true);
    expect(charts.segments.series).toEqual([{ label: 'champions', data: [3, 4] }, { label: 'lost', data: [1, 0] }]);
    // cohorts sorted, an age a young cohort has not reached is a gap (null)
    expect(charts.ltv.labels).toEqual(['month 0', 'month 1']);
    expect(charts.ltv.series).toEqual([{ label: '2026-01', data: [60, 85] }, { label: '2026-02', data: [50, null] }]);
    // buckets in numeric order, 5+ last; a channel without a bucket has a gap
    expect(charts.fatigue.labels).toEqual(['1/week', '5+/week']);
    expect(charts.fatigue.series).toEqual([{ label: 'email', data: [0.037037, 0] }, { label: 'sms', data: [0, null] }]);
    expect(charts.churned.series[0].data).toEqual([0, 0.05]);
  });

  it('shows table cells as the chart means them', () => {
    expect(cell(charts.fatigue, 0.037037)).toBe('3.7%');
    expect(cell(charts['average-check'], 60)).toBe('60');
    expect(cell(charts['average-check'], 62.5)).toBe('62.50');
    expect(cell(charts.ltv, null)).toBe('—');
  });

  it('copes with an empty answer', () => {
    expect(baseCharts({}).every((c) => c.labels.length === 0)).toBe(true);
  });
});
