// One chart.js chart (loaded lazily with this module: the canvas editor never pays for it).
// Only the controllers and scales used here are registered, so the chunk stays small.
import { useEffect, useRef } from 'react';
import {
  BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip,
} from 'chart.js';

Chart.register(BarController, BarElement, CategoryScale, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip);

const COLOURS = ['#2457c5', '#1f9d55', '#c58a24', '#7a5cc5', '#b3261e', '#0f8a8a', '#6b7480', '#d4568c'];

/** Draws `chart` ({kind, labels, series, stacked, percent}) from src/analytics.js baseCharts. */
export default function ChartView({ chart }) {
  const ref = useRef(null);
  useEffect(() => {
    const c = new Chart(ref.current, {
      type: chart.kind,
      data: {
        labels: chart.labels,
        datasets: chart.series.map((s, i) => ({
          label: s.label, data: s.data, borderColor: COLOURS[i % COLOURS.length],
          backgroundColor: COLOURS[i % COLOURS.length] + (chart.kind === 'bar' ? 'cc' : '33'), spanGaps: true, tension: 0.2,
        })),
      },
      options: {
        animation: false, maintainAspectRatio: false, responsive: true,
        scales: {
          x: { stacked: !!chart.stacked },
          y: { stacked: !!chart.stacked, beginAtZero: true, ticks: chart.percent ? { callback: (v) => `${Math.round(v * 100)}%` } : {} },
        },
        plugins: { legend: { display: chart.series.length > 1 } },
      },
    });
    // What chart.js holds after drawing, as the numbers per series (the browser test reads it).
    ref.current.dataset.series = JSON.stringify(c.data.datasets.map((d) => d.data));
    return () => c.destroy();
  }, [chart]);
  return <div className="chart-box"><canvas ref={ref} data-testid={`chart-${chart.id}`} role="img" aria-label={chart.title} /></div>;
}
