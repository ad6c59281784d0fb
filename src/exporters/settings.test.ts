import { describe, expect, it } from 'vitest';
import { parseExporterSettings } from './settings';

const stripe = { type: 'stripe', api_key: 'sk_test_x', event_name: 'llm' };

describe('tollgate.exporters', () => {
  it('applies defaults and names each exporter after its type', () => {
    const [settings] = parseExporterSettings({ exporters: [stripe] });
    expect(settings).toMatchObject({ type: 'stripe', name: 'stripe', value: 'charge', unit: 'usd_micros', retryMaxAgeMs: 3 * 24 * 3600 * 1000 });
  });

  it('gives each of several Stripe meters its own identifier suffix, and refuses two on one meter', () => {
    const [charge, tokens] = parseExporterSettings({ exporters: [stripe, { ...stripe, name: 'tokens', event_name: 'llm_tokens', value: 'total_tokens' }] });
    expect([charge, tokens].map((s) => s!.type === 'stripe' && s!.identifierSuffix)).toEqual(['llm', 'llm_tokens']);
    expect(() => parseExporterSettings({ exporters: [stripe, { ...stripe, name: 'again' }] })).toThrow(/tollgate\.exporters\[1\]\.event_name: "llm" is used by another Stripe exporter/);
  });

  it.each([
    [[{ ...stripe, event_name: undefined }], /tollgate\.exporters\[0\]\.event_name: is required/],
    [[{ type: 'lago' }], /tollgate\.exporters\[0\].*type must be "stripe" or "openmeter"/],
    [[stripe, stripe], /tollgate\.exporters\[1\]\.name: "stripe" is used by another exporter/],
    [[{ ...stripe, unit: 'usd_cents', value: 'total_tokens' }], /tollgate\.exporters\[0\]\.unit: only applies to value: charge/],
    [[{ ...stripe, value: 'dollars' }], /tollgate\.exporters\[0\]\.value/],
    [[{ type: 'openmeter', url: 'not a url' }], /tollgate\.exporters\[0\]\.url: must be an http\(s\) URL/],
    [[{ ...stripe, colour: 'blue' }], /tollgate\.exporters\[0\]/],
  ])('refuses %j naming the key', (exporters, message) => {
    expect(() => parseExporterSettings({ exporters })).toThrow(message);
  });
});
