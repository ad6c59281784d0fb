/**
 * @module Budget alert settings from LiteLLM's `general_settings.alerting_args`:
 * `budget_alert_thresholds` (fractions of max_budget, default [0.85, 0.95]).
 */
import { ConfigError, type GatewayConfig } from '../config/load';
import { DEFAULT_THRESHOLDS, parseThreshold, type Threshold } from './thresholds';

export interface AlertSettings {
  thresholds: Threshold[];
}

const KEY = 'general_settings.alerting_args.budget_alert_thresholds';

export function parseAlertSettings(config: Pick<GatewayConfig, 'alertingArgs'>): AlertSettings {
  const raw = config.alertingArgs.budget_alert_thresholds ?? DEFAULT_THRESHOLDS;
  if (!Array.isArray(raw)) throw new ConfigError(`${KEY}: expected a list of fractions of max_budget, e.g. [0.85, 0.95]`);
  const thresholds: Threshold[] = [];
  raw.forEach((value, index) => {
    const threshold = parseThreshold(value);
    if (!threshold) throw new ConfigError(`${KEY}[${index}]: "${String(value)}" is not a fraction between 0 and 1 (exclusive), e.g. 0.85`);
    if (!thresholds.some((t) => t.key === threshold.key)) thresholds.push(threshold);
  });
  thresholds.sort((a, b) => (a.parts < b.parts ? -1 : 1));
  return { thresholds };
}
