/** A date range the operator picks: presets, or two dates (inclusive days, this browser's zone). */
import { addDays, dayKey } from '../format';

export interface DayRange {
  /** YYYY-MM-DD, inclusive. */
  from: string;
  to: string;
}

export function lastDays(days: number, today = new Date()): DayRange {
  return { from: dayKey(addDays(today, -(days - 1))), to: dayKey(today) };
}

const PRESETS = [7, 30, 90];

export function DateRangePicker({ value, onChange, label = 'Date range' }: { value: DayRange; onChange: (range: DayRange) => void; label?: string }) {
  const today = dayKey(new Date());
  return (
    <fieldset className="date-range">
      <legend className="visually-hidden">{label}</legend>
      <div className="presets" role="group" aria-label="Presets">
        {PRESETS.map((days) => {
          const preset = lastDays(days);
          const active = preset.from === value.from && preset.to === value.to;
          return (
            <button key={days} type="button" className={active ? 'button small selected' : 'button small'} aria-pressed={active} onClick={() => onChange(preset)}>
              {days} days
            </button>
          );
        })}
      </div>
      <label className="inline-field">
        <span>From</span>
        <input type="date" value={value.from} max={value.to} onChange={(event) => event.target.value && onChange({ ...value, from: event.target.value })} />
      </label>
      <label className="inline-field">
        <span>To</span>
        <input type="date" value={value.to} min={value.from} max={today} onChange={(event) => event.target.value && onChange({ ...value, to: event.target.value })} />
      </label>
    </fieldset>
  );
}
