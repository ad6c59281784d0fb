import type { CustomerStatus } from '../api/operations';
import { statusLabel } from '../format';

const TITLES: Record<CustomerStatus, string> = {
  active: 'Requests are served.',
  over_budget: 'Spend reached the max budget: requests are refused (429) until the period resets.',
  rate_limited: 'Refused by a rate limit in the last minute.',
  blocked: 'Blocked: every request is refused (403).',
};

export function StatusPill({ status }: { status: CustomerStatus }) {
  return (
    <span className={`pill ${status}`} title={TITLES[status]} data-status={status}>
      {statusLabel(status)}
    </span>
  );
}
