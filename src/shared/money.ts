/**
 * @module Money in integer pico-USD (1e-12 $) end to end.
 *
 * Why pico and not micro: per-token prices are fractions of a micro-dollar
 * ($0.5 per million tokens = 0.5 µ$ a token), so micro-units cannot hold one token's
 * price exactly. Pico-units hold any price quoted to six decimals per million tokens,
 * and a bigint column holds up to ~$9.2M per row. Dollars appear only at the API edge.
 */
export type Pico = bigint;

/** The largest amount a bigint column holds: about $9.2M (per budget, per customer period). */
export const MAX_PICO: Pico = 2n ** 63n - 1n;

const PICO_DIGITS = 12;
const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/** Parses a dollar amount (number or decimal string) exactly into pico-USD, rounding half up past 12 digits. */
export function dollarsToPico(value: number | string): Pico {
  const text = typeof value === 'number' ? numberToPlainString(value) : value.trim();
  const match = DECIMAL.exec(text);
  if (!match || (match[2] === '' && (match[3] ?? '') === '')) throw new RangeError(`not a decimal amount: ${text}`);
  const [, sign, intPart, fracPart = '', exponentText] = match;
  const exponent = exponentText ? Number(exponentText) : 0;
  const digits = (intPart || '0') + fracPart;
  const scale = fracPart.length - exponent; // value = digits × 10^-scale
  let result: bigint;
  if (scale <= PICO_DIGITS) {
    result = BigInt(digits) * 10n ** BigInt(PICO_DIGITS - scale);
  } else {
    const drop = scale - PICO_DIGITS;
    const kept = digits.length > drop ? digits.slice(0, digits.length - drop) : '0';
    const firstDropped = digits.length >= drop ? Number(digits[digits.length - drop] ?? '0') : 0;
    result = BigInt(kept) + (firstDropped >= 5 ? 1n : 0n);
  }
  return sign === '-' ? -result : result;
}

/** Formats pico-USD as a plain decimal string of dollars, trailing zeros removed. */
export function picoToDecimalString(pico: Pico): string {
  const negative = pico < 0n;
  const abs = negative ? -pico : pico;
  const whole = abs / 10n ** 12n;
  const fraction = (abs % 10n ** 12n).toString().padStart(PICO_DIGITS, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? '.' + fraction : ''}`;
}

/** Dollars as a JSON number for the LiteLLM-compatible wire shapes (nearest double). */
export function picoToDollars(pico: Pico): number {
  return Number(picoToDecimalString(pico));
}

function numberToPlainString(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`not a finite amount: ${value}`);
  // Shortest round-trip representation, so 0.1 stays "0.1" and not 0.1000000000000000055…
  return String(value);
}
