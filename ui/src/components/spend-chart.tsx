/**
 * Spend per day (or hour) as bars, drawn by uPlot (see README: small, fast, no React
 * version coupling). Ticks land on round amounts (uPlot's 1/2/2.5/5 × 10^n steps); day labels
 * carry the year when it is not this year. The chart is an image with a summary for screen
 * readers; the same numbers are in the page's tables.
 */
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { count, dayLabel, dayStart, usd } from '../format';

export interface ChartPoint {
  /** YYYY-MM-DD, or YYYY-MM-DDTHH for hours. */
  key: string;
  spend: number;
  requests: number;
}

function startOf(key: string): Date {
  const [day, hour] = key.split('T');
  const date = dayStart(day!);
  if (hour) date.setHours(Number(hour));
  return date;
}

export function SpendChart({ points, label = 'Spend per day' }: { points: ChartPoint[]; label?: string }) {
  const container = useRef<HTMLDivElement>(null);
  const total = points.reduce((sum, point) => sum + point.spend, 0);
  const requests = points.reduce((sum, point) => sum + point.requests, 0);
  const peak = points.reduce<ChartPoint | null>((best, point) => (!best || point.spend > best.spend ? point : best), null);

  useEffect(() => {
    const root = container.current;
    if (!root) return;
    const xs = points.map((point) => startOf(point.key).getTime() / 1000);
    const ys = points.map((point) => point.spend);
    const thisYear = new Date().getFullYear();
    const hourly = points.some((point) => point.key.includes('T'));
    const width = () => Math.max(240, root.clientWidth);
    const options: uPlot.Options = {
      width: width(),
      height: 240,
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.08 : 1] } },
      axes: [
        {
          stroke: '#626b7a',
          grid: { show: false },
          values: (_u, splits) =>
            splits.map((seconds) => {
              const date = new Date(seconds * 1000);
              if (hourly) return `${String(date.getHours()).padStart(2, '0')}:00`;
              const key = `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, '0')}-${String(date.getDate()).padStart(2, '0')}`;
              return dayLabel(key, thisYear);
            }),
        },
        { stroke: '#626b7a', grid: { stroke: '#edf0f4' }, size: 70, values: (_u, splits) => splits.map((value) => usd(value)) },
      ],
      series: [
        {},
        {
          label: 'Spend',
          fill: '#9db4ec',
          stroke: '#2f5bd3',
          width: 0,
          paths: uPlot.paths.bars!({ size: [0.7, 48], gap: 1 }),
          points: { show: false },
        },
      ],
    };
    const plot = new uPlot(options, [xs, ys], root);
    const observer = new ResizeObserver(() => plot.setSize({ width: width(), height: 240 }));
    observer.observe(root);
    return () => {
      observer.disconnect();
      plot.destroy();
    };
  }, [points]);

  const summary = `${label}: ${usd(total)} in ${count(requests)} requests over ${points.length} ${points.some((p) => p.key.includes('T')) ? 'hours' : 'days'}${peak && peak.spend > 0 ? `; highest ${usd(peak.spend)} on ${dayLabel(peak.key.split('T')[0]!)}` : ''}.`;
  return (
    <figure className="chart" data-testid="spend-chart" data-total={total}>
      <div ref={container} role="img" aria-label={summary} />
      <figcaption className="visually-hidden">{summary}</figcaption>
    </figure>
  );
}
