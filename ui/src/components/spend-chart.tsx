/** Daily spend as an inline SVG bar chart: no chart library, scales to its container. */
import { usd } from '../format';

export interface DayPoint {
  key: string;
  spend: number;
  requests: number;
}

// Roughly the size it is drawn at on a desktop page, so text in it keeps the page's size.
const WIDTH = 1080;
const HEIGHT = 260;
const MARGIN = { top: 14, right: 12, bottom: 30, left: 76 };

/** The smallest 1, 2, 2.5 or 5 × 10^n at or above `value`, so gridlines land on round amounts. */
function niceCeiling(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 2.5, 5, 10].find((candidate) => candidate * power >= value * (1 - 1e-9))!;
  return step * power;
}

function dayLabel(key: string): string {
  const [year, month, day] = key.split('-').map(Number);
  return new Date(year!, month! - 1, day!).toLocaleDateString('en-US', { month: 'short', day: 'numeric' });
}

export function SpendChart({ days, today }: { days: DayPoint[]; today: string }) {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const top = niceCeiling(Math.max(0, ...days.map((d) => d.spend)));
  const slot = plotWidth / Math.max(days.length, 1);
  const barWidth = Math.max(2, slot * 0.68);
  const gridlines = [0, 0.25, 0.5, 0.75, 1];
  const labelEvery = Math.ceil(days.length / 7);
  const total = days.reduce((sum, d) => sum + d.spend, 0);

  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={`Spend per day: ${usd(total)} over ${days.length} days`} data-testid="spend-chart">
        {gridlines.map((fraction) => {
          const y = MARGIN.top + plotHeight * (1 - fraction);
          return (
            <g key={fraction}>
              <line x1={MARGIN.left} x2={WIDTH - MARGIN.right} y1={y} y2={y} className={fraction === 0 ? 'axis' : 'grid'} />
              <text x={MARGIN.left - 8} y={y + 4} textAnchor="end" className="tick">
                {usd(top * fraction)}
              </text>
            </g>
          );
        })}
        {days.map((day, index) => {
          const height = top > 0 ? (day.spend / top) * plotHeight : 0;
          const x = MARGIN.left + slot * index + (slot - barWidth) / 2;
          return (
            <g key={day.key}>
              <rect
                x={x}
                y={MARGIN.top + plotHeight - height}
                width={barWidth}
                height={Math.max(height, day.spend > 0 ? 1.5 : 0)}
                rx={2}
                className={day.key === today ? 'bar today' : 'bar'}
                data-day={day.key}
              >
                <title>{`${dayLabel(day.key)}: ${usd(day.spend)} in ${day.requests} request${day.requests === 1 ? '' : 's'}`}</title>
              </rect>
              {(index % labelEvery === 0 || index === days.length - 1) && (
                <text x={MARGIN.left + slot * index + slot / 2} y={HEIGHT - 10} textAnchor="middle" className="tick">
                  {day.key === today ? 'Today' : dayLabel(day.key)}
                </text>
              )}
            </g>
          );
        })}
      </svg>
    </figure>
  );
}
