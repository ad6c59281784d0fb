/**
 * @module Prometheus metrics of one process, at `GET /metrics` (admin key required). Each
 * process reports only what it served itself, so a scrape of every proxy sums correctly;
 * spend relayed from other processes for live subscriptions is not counted here. Labels stay
 * low-cardinality: route, configured model name and status, never the customer (the ledger
 * and /spend/logs answer per-customer questions).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SpendRecord } from '../ledger/types';
import { picoToDollars } from '../shared/money';

/** Point-in-time readings taken at each scrape, not on the request path. */
export interface MetricsSources {
  inFlightRequests(): number;
  ledgerBacklog(): number;
  /** Counter updates waiting for Redis to come back. */
  sharedCounterCatchUp(): number;
  liveSubscriptions(): number;
  /** Each configured usage exporter's outbox backlog (read from the database at each scrape). */
  exporterBacklog?(): Promise<{ exporter: string; pending: number; failed: number; lagSeconds: number }[]>;
}

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  private readonly requests: Counter<'route' | 'model' | 'status'>;
  private readonly duration: Histogram<'route' | 'model'>;
  private readonly spend: Counter<'model'>;
  private readonly tokens: Counter<'model' | 'type'>;

  constructor(role: string, sources: MetricsSources) {
    this.registry.setDefaultLabels({ role });
    collectDefaultMetrics({ register: this.registry, prefix: 'tollgate_' });
    this.requests = new Counter({
      name: 'tollgate_requests_total',
      help: 'Inference requests answered, by route, model and HTTP status (499: the client left first).',
      labelNames: ['route', 'model', 'status'],
      registers: [this.registry],
    });
    this.duration = new Histogram({
      name: 'tollgate_request_duration_seconds',
      help: 'Time from request to last byte, streams included.',
      labelNames: ['route', 'model'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: [this.registry],
    });
    this.spend = new Counter({
      name: 'tollgate_spend_usd_total',
      help: 'Cost metered by this process, in USD (a float view; the ledger is exact).',
      labelNames: ['model'],
      registers: [this.registry],
    });
    this.tokens = new Counter({
      name: 'tollgate_tokens_total',
      help: 'Tokens metered by this process.',
      labelNames: ['model', 'type'],
      registers: [this.registry],
    });
    const reading = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(read());
        },
      });
    reading('tollgate_requests_in_flight', 'Inference requests being served now.', sources.inFlightRequests);
    reading('tollgate_ledger_backlog', 'Metered requests journaled but not yet committed to the database.', sources.ledgerBacklog);
    reading('tollgate_shared_counter_catch_up', 'Counter updates Redis has not confirmed yet (queued for a retry, or sent and unanswered).', sources.sharedCounterCatchUp);
    reading('tollgate_live_subscriptions', 'GraphQL subscriptions open on this process.', sources.liveSubscriptions);
    if (sources.exporterBacklog) this.exporterGauges(sources.exporterBacklog);
  }

  /**
   * Per exporter, from the shared outbox: every process reports the same database-wide value
   * (aggregate with max, not sum). Lag is the age of the oldest export not yet delivered.
   */
  private exporterGauges(read: NonNullable<MetricsSources['exporterBacklog']>): void {
    let latest: Promise<Awaited<ReturnType<typeof read>>> | null = null;
    // One query per scrape for the three gauges (each collect() asks; the first one reads).
    // A database that cannot answer leaves these gauges empty rather than failing the whole scrape.
    const backlog = () => (latest ??= read().catch(() => []).finally(() => setImmediate(() => (latest = null))));
    const gauge = (name: string, help: string, value: (row: Awaited<ReturnType<typeof read>>[number]) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['exporter'],
        registers: [this.registry],
        async collect() {
          this.reset();
          for (const row of await backlog()) this.set({ exporter: row.exporter }, value(row));
        },
      });
    gauge('tollgate_exporter_lag_seconds', 'Seconds since the oldest usage export not yet delivered was metered, per exporter (0: none waiting).', (row) => row.lagSeconds);
    gauge('tollgate_exporter_pending', 'Usage exports waiting to be delivered (first attempt or retry), per exporter.', (row) => row.pending);
    gauge('tollgate_exporter_failed', 'Usage exports in the dead-letter list (retry time used up), per exporter.', (row) => row.failed);
  }

  /** Called once per inference request, when it is over. `model` is null when it never got that far. */
  requestFinished(route: 'chat' | 'embeddings' | 'responses' | 'messages', model: string | null, status: number, seconds: number): void {
    const series = this.seriesOf(`${route}\u0000${model ?? ''}\u0000${status}`, () => {
      const labels = { route, model: model ?? '' };
      return { requests: this.requests.labels({ ...labels, status: String(status) }), duration: this.duration.labels(labels) };
    });
    series.requests.inc();
    series.duration.observe(seconds);
  }

  /** Called by the internal resolver for each request it meters. */
  metered(record: SpendRecord): void {
    const { model } = record;
    const series = this.meteredSeries.get(model) ?? this.meteredSeriesOf(model);
    series.spend.inc(picoToDollars(record.costPico));
    series.prompt.inc(record.promptTokens);
    series.completion.inc(record.completionTokens);
  }

  /**
   * Each request's series, looked up once per label set: prom-client hashes the label object
   * on every call otherwise. Labels are few (routes × configured models × statuses).
   */
  private readonly requestSeries = new Map<string, { requests: { inc(): void }; duration: { observe(value: number): void } }>();
  private readonly meteredSeries = new Map<string, { spend: { inc(value: number): void }; prompt: { inc(value: number): void }; completion: { inc(value: number): void } }>();

  private seriesOf(key: string, make: () => { requests: { inc(): void }; duration: { observe(value: number): void } }) {
    let series = this.requestSeries.get(key);
    if (!series) {
      series = make();
      this.requestSeries.set(key, series);
    }
    return series;
  }

  private meteredSeriesOf(model: string) {
    const series = { spend: this.spend.labels({ model }), prompt: this.tokens.labels({ model, type: 'prompt' }), completion: this.tokens.labels({ model, type: 'completion' }) };
    this.meteredSeries.set(model, series);
    return series;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
