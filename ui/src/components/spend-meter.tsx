import { usd } from '../format';

/** Spend against the max budget in force: a bar that turns amber past 80 % and red at the cap. */
export function SpendMeter({ spend, maxBudget, large = false, label }: { spend: number; maxBudget: number | null | undefined; large?: boolean; label?: string }) {
  const hasCap = maxBudget !== null && maxBudget !== undefined;
  const ratio = hasCap ? (maxBudget === 0 ? 1 : Math.min(1, spend / maxBudget)) : 0;
  const level = !hasCap ? '' : ratio >= 1 ? 'over' : ratio >= 0.8 ? 'near' : '';
  const percent = hasCap ? (maxBudget === 0 ? 100 : Math.round((spend / maxBudget) * 100)) : 0;
  return (
    <div className={large ? 'meter large' : 'meter'}>
      <div className="meter-text">
        <span className="money" data-testid="spend">{usd(spend)}</span>
        {hasCap ? <span className="muted"> of {usd(maxBudget)}</span> : <span className="muted small"> no cap</span>}
      </div>
      {hasCap && (
        <div
          className="meter-track"
          role="meter"
          aria-label={`${label ?? 'Spend'}: ${usd(spend)} of ${usd(maxBudget)} (${percent} %)`}
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={Math.min(100, percent)}
        >
          <div className={`meter-fill ${level}`} style={{ width: `${Math.max(ratio * 100, spend > 0 ? 1.5 : 0)}%` }} />
        </div>
      )}
    </div>
  );
}
