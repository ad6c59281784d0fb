import { describe, expect, it } from 'vitest';
import { dollarsToPico } from '../shared/money';
import { crossings, DEFAULT_THRESHOLDS, parseThreshold, type Threshold } from './thresholds';

const thresholds = DEFAULT_THRESHOLDS.map((value) => parseThreshold(value)!) as Threshold[];
const $ = (value: string) => dollarsToPico(value);
const levels = { maxBudgetPico: $('10'), softBudgetPico: $('5') };
const types = (before: string, after: string) => crossings($(before), $(after), levels, thresholds).map((c) => `${c.type}:${c.thresholdKey}`);

describe('parseThreshold', () => {
  it('accepts fractions in (0, 1) as numbers or strings, exactly', () => {
    expect(parseThreshold(0.85)).toEqual({ key: '0.85', fraction: 0.85, parts: 850_000_000_000n });
    expect(parseThreshold('0.5')).toMatchObject({ key: '0.5', parts: 500_000_000_000n });
    expect(parseThreshold('.950')).toMatchObject({ key: '0.95' });
  });

  it('rejects anything else', () => {
    for (const bad of [0, 1, 1.5, -0.5, '0', '85%', 'abc', null, undefined, Number.NaN, '0.0000000000001', {}]) expect(parseThreshold(bad), String(bad)).toBeNull();
  });
});

describe('crossings', () => {
  it('fires a level when before < level <= after, reaching it exactly included', () => {
    expect(types('0', '4.99')).toEqual([]);
    expect(types('4.99', '5')).toEqual(['soft_budget_crossed:soft']);
    expect(types('5', '8.49')).toEqual([]);
    expect(types('8.49', '8.5')).toEqual(['threshold_crossed:0.85']);
    expect(types('8.5', '9.6')).toEqual(['threshold_crossed:0.95']);
    expect(types('9.6', '10')).toEqual(['budget_crossed:1']);
    expect(types('10', '12')).toEqual([]);
  });

  it('fires every level one request jumps over, in order', () => {
    expect(types('0', '11')).toEqual(['soft_budget_crossed:soft', 'threshold_crossed:0.85', 'threshold_crossed:0.95', 'budget_crossed:1']);
  });

  it('is exact to the pico-dollar', () => {
    // 0.85 × $0.000001 = $0.00000085 exactly
    const small = { maxBudgetPico: $('0.000001'), softBudgetPico: null };
    expect(crossings($('0'), $('0.00000084999'), small, thresholds)).toEqual([]);
    expect(crossings($('0'), $('0.00000085'), small, thresholds)).toHaveLength(1);
  });

  it('fires nothing without limits, for a zero budget, or when spend did not grow', () => {
    expect(crossings($('0'), $('100'), { maxBudgetPico: null, softBudgetPico: null }, thresholds)).toEqual([]);
    expect(crossings(0n, 0n, { maxBudgetPico: 0n, softBudgetPico: 0n }, thresholds)).toEqual([]);
    expect(crossings($('9'), $('9'), levels, thresholds)).toEqual([]);
  });
});
