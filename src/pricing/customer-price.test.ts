import { describe, expect, it } from 'vitest';
import { chargeOf, modelPriceFrom, priceMultiplierFrom } from './customer-price';

const usage = { promptTokens: 10, completionTokens: 20 };

describe('customer prices', () => {
  it('parses decimal multipliers exactly and refuses anything else', () => {
    expect(priceMultiplierFrom('1.25')).toEqual({ text: '1.25', numerator: 125n, denominator: 100n });
    expect(priceMultiplierFrom('01.500')).toEqual({ text: '1.5', numerator: 15n, denominator: 10n });
    expect(priceMultiplierFrom('2')).toEqual({ text: '2', numerator: 2n, denominator: 1n });
    for (const bad of ['', '-1', '1e3', 'abc', '1.', '.5', '1.0000000000001']) expect(priceMultiplierFrom(bad)).toBeNull();
  });

  it('charges the cost without a tier price, cost × multiplier rounded half up with one', () => {
    expect(chargeOf(null, 'm', usage, 1_000_003n)).toBe(1_000_003n);
    const pricing = { priceMultiplier: priceMultiplierFrom('1.25')!, modelPrices: null };
    expect(chargeOf(pricing, 'm', usage, 1_000_000n)).toBe(1_250_000n);
    expect(chargeOf(pricing, 'm', usage, 2n)).toBe(3n); // 2.5 → 3
    expect(chargeOf(pricing, 'm', usage, 1n)).toBe(1n); // 1.25 → 1
    expect(chargeOf({ priceMultiplier: priceMultiplierFrom('0')!, modelPrices: null }, 'm', usage, 5n)).toBe(0n);
  });

  it("prices a model at the tier's own per-token price, whatever the multiplier", () => {
    const own = modelPriceFrom({ input_cost_per_token: '0.000003', output_cost_per_token: 0.000004 });
    expect(own.cacheReadPerToken).toBe(own.inputPerToken);
    const pricing = { priceMultiplier: priceMultiplierFrom('1.25')!, modelPrices: { m: own } };
    expect(chargeOf(pricing, 'm', usage, 999n)).toBe(10n * 3_000_000n + 20n * 4_000_000n);
    expect(chargeOf(pricing, 'other', usage, 1000n)).toBe(1250n);
  });
});
