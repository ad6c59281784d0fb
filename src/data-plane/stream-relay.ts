/**
 * @module Relays one upstream stream to the client, event by event, and settles it once
 * whatever its ending: provider usage when reported in full, counted text when the answer is
 * complete without usage, an estimate of what was delivered when it ended early (SPEC §3).
 */
import type { ServerResponse } from 'node:http';
import type { Decision, InternalResolver, Settlement } from '../governance/resolver';
import type { Logger } from '../observability/logger';
import type { TokenUsage } from '../pricing/prices';
import { countTextTokens } from '../pricing/tokens';
import type { SseOut, StreamTranslator } from '../providers/types';
import { GatewayError } from '../shared/errors';
import { picoToDecimalString } from '../shared/money';
import type { ApiFormat, Exchange } from './api-formats/types';
import type { UpstreamResponse } from './forwarder';
import { SseParser } from './sse';
import { sanitiseStreamEvent, upstreamFailure } from './upstream-errors';

export const COST_HEADER = 'x-litellm-response-cost';

export interface StreamRelayDependencies {
  resolver: InternalResolver;
  logger: Logger;
  /** Configured secrets, cut from error events the provider sends mid-stream. */
  secrets?: string[];
}

export interface StreamToRelay {
  requestId: string;
  format: ApiFormat;
  decision: Decision;
  exchange: Exchange;
  upstream: UpstreamResponse;
  /** The admission's prompt estimate. */
  promptTokens: number;
  /** The exact prompt count, billed when the provider reported none. */
  exactPromptTokens?: () => Promise<number>;
  /** Told once a stream ended normally, before its last byte (e.g. to store the response). */
  onCompleted(translator: StreamTranslator): Promise<void>;
}

/**
 * Each upstream event is translated and written as soon as it is complete, waiting only when
 * the client reads slower than the provider writes. The event that carries the final usage
 * (and whatever follows it) is held until the request is settled, so it can carry the cost.
 */
export async function relayStream(deps: StreamRelayDependencies, stream: StreamToRelay, response: ServerResponse): Promise<void> {
  const { format, decision, exchange, upstream } = stream;
  const translator = exchange.createStream();
  decision.delivery = translator; // journaled while it streams, so a kill -9 still charges it
  const parser = new SseParser();
  response.writeHead(200, {
    ...decision.headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    // The cost is known only at the end of a stream: in the usage event, and as a trailer.
    trailer: COST_HEADER,
  });
  // The client gets the headers at once, so it knows the stream started; when the first
  // events came with the upstream's headers they leave together, in one write.
  if (!upstream.bodyArrived?.()) response.flushHeaders();
  const held: SseOut[] = [];
  const probe = { cost: '0', budgetRemaining: null };
  const secrets = { sentHeaders: exchange.request.headers, secrets: deps.secrets ?? [] };
  const emit = (payloads: SseOut[]): boolean => {
    let writable = true;
    for (const event of payloads) {
      const payload = sanitiseStreamEvent(event, secrets);
      if (held.length || ((translator.finished || translator.usageComplete) && format.withCost(payload, probe) !== null)) held.push(payload);
      else writable = writeEvent(response, payload);
    }
    return writable;
  };
  let failure: GatewayError | null = null;
  let clientLeft: boolean;
  try {
    for await (const chunk of upstream.body) {
      if (response.destroyed) break;
      let writable = true;
      // The events of one upstream chunk leave in one socket write, not one write each.
      response.cork();
      try {
        for (const event of parser.push(chunk)) writable = emit(translator.onEvent(event)) && writable;
      } finally {
        response.uncork();
      }
      if (!writable) await drained(response);
    }
    if (!response.destroyed) for (const event of parser.end()) emit(translator.onEvent(event));
    clientLeft = response.destroyed;
  } catch (error) {
    clientLeft = response.destroyed || response.writableEnded;
    if (!clientLeft) failure = upstreamFailure(error, exchange.deployment);
  }
  if (clientLeft) {
    upstream.destroy();
    await settleStream(deps, stream, translator, 'client disconnected');
    return;
  }
  if (!failure && !translator.finished && !translator.errored) {
    failure = new GatewayError('upstream_error', `Upstream ${exchange.deployment.id} closed the stream before it finished.`);
  }
  const why = failure?.message ?? (translator.errored ? 'upstream sent an error event' : null);
  const settlement = await settleStream(deps, stream, translator, why);
  const figures = { cost: picoToDecimalString(settlement?.chargePico ?? 0n), budgetRemaining: settlement?.budgetRemainingPico != null ? picoToDecimalString(settlement.budgetRemainingPico) : null };
  const tail = failure || translator.errored ? held : [...held, ...translator.finish()];
  if (!failure && !translator.errored && !why) await stream.onCompleted(translator);
  // The held events, the trailer and the stream's end: one socket write.
  response.cork();
  for (const payload of tail) writeEvent(response, format.withCost(payload, figures) ?? payload);
  if (failure) for (const payload of format.streamError(failure)) writeEvent(response, payload);
  response.addTrailers({ [COST_HEADER]: figures.cost });
  response.end();
  response.uncork();
}

/** `why` is null for a stream that ended normally, else the reason it ended early. */
async function settleStream(deps: StreamRelayDependencies, stream: StreamToRelay, translator: StreamTranslator, why: string | null): Promise<Settlement | null> {
  const { decision, promptTokens, requestId } = stream;
  const status = why ? 'partial' : 'success';
  const reported = translator.usage;
  if (reported && translator.usageComplete) return deps.resolver.settle(decision, reported, 'provider', status);
  const deliveredTokens = countTextTokens(translator.deliveredText);
  // The whole answer was delivered, the provider just did not count it: count it ourselves.
  const billedPromptTokens = async () => (stream.exactPromptTokens ? stream.exactPromptTokens() : promptTokens);
  if (translator.finished) return deps.resolver.settle(decision, { promptTokens: await billedPromptTokens(), completionTokens: deliveredTokens }, 'computed', status);
  if (!reported && deliveredTokens === 0) {
    // Nothing was generated (or nothing reached us) and the provider reported no usage:
    // nothing is charged without usage, and the reservation is released.
    await deps.resolver.release(decision);
    deps.logger.warn({ requestId, why }, 'stream ended before any token; nothing charged');
    return null;
  }
  // Ended early: the provider's prompt count when it gave one (Anthropic does at the start),
  // and at least the tokens we delivered.
  const usage: TokenUsage = reported ? { ...reported, completionTokens: Math.max(reported.completionTokens, deliveredTokens) } : { promptTokens: await billedPromptTokens(), completionTokens: deliveredTokens };
  const settlement = await deps.resolver.settle(decision, usage, 'estimated', 'partial');
  deps.logger.warn({ requestId, why, costPico: settlement.costPico.toString() }, 'stream ended early; charged what was delivered');
  return settlement;
}

function writeEvent(response: ServerResponse, payload: SseOut): boolean {
  if (typeof payload === 'string') return response.write(`data: ${payload}\n\n`);
  return response.write(`event: ${payload.event}\ndata: ${payload.data}\n\n`);
}

/** Resolves when the client can take more data, or has gone. */
function drained(response: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      response.off('drain', done);
      response.off('close', done);
      resolve();
    };
    response.on('drain', done);
    response.on('close', done);
  });
}
