import { usd } from '../format';

/** Spend against the max budget in force: a bar that turns amber past 80 % and red at the cap. */
export function SpendMeter({ spend, maxBudget, large = false }: { spend: number; maxBudget: number | null | undefined; large?: boolean }) {
  const hasCap = maxBudget !== null && maxBudget !== undefined;
  const ratio = hasCap ? (maxBudget === 0 ? 1 : Math.min(1, spend / maxBudget)) : 0;
  const level = !hasCap ? '' : ratio >= 1 ? 'over' : ratio >= 0.8 ? 'near' : '';
  return (
    <div className={large ? 'meter large' : 'meter'}>
      <div className="meter-text">
        <span className="money" data-testid="spend">{usd(spend)}</span>
        {hasCap && <span className="muted"> of {usd(maxBudget)}</span>}
      </div>
      {hasCap && (
        <div className="meter-track" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(ratio * 100)}>
          <div className={`meter-fill ${level}`} style={{ width: `${Math.max(ratio * 100, spend > 0 ? 1.5 : 0)}%` }} />
        </div>
      )}
    </div>
  );
}
