/**
 * @module What the main thread and the body workers say to each other. Only small values
 * cross by structured clone: the request's bytes are shared (a SharedArrayBuffer, written
 * once as the body arrives) and the outbound body is transferred, never copied.
 */
import type { Deployment } from '../../config/load';
import type { TokenUsage } from '../../pricing/prices';
import type { ErrorCode } from '../../shared/errors';

/** The routes whose big bodies are prepared off the main thread. */
export type BigBodyRoute = 'chat' | 'messages';

export interface BodyRef {
  /** The request body as received (UTF-8 JSON). */
  bytes: SharedArrayBuffer;
  length: number;
}

/** A GatewayError, as data. */
export interface ErrorData {
  code: ErrorCode;
  message: string;
  param: string | null;
  status: number;
  headers: Record<string, string>;
}

export interface PrepareTask extends BodyRef {
  op: 'prepare';
  route: BigBodyRoute;
  headers: Record<string, string | string[] | undefined>;
  /** The deployment to build the upstream request for, per public model name. */
  deployments: Record<string, Deployment>;
}

export interface CountTask extends BodyRef {
  op: 'count';
  route: BigBodyRoute;
}

/**
 * A big upstream JSON answer: parsed and translated in the worker; only its usage (or its
 * text's exact count) comes back, with the client's body when it is not the upstream's own.
 */
export interface AnswerTask extends BodyRef {
  op: 'answer';
  route: BigBodyRoute;
  head: Head;
  state: unknown;
  deployment: Deployment;
  headers: Record<string, string | string[] | undefined>;
}

export type BodyTask = PrepareTask | CountTask | AnswerTask;

/**
 * The body with every big value emptied ([] for an array, '' for a string, {} for an object):
 * what the main thread reads (model, customer fields, output caps, flags) stays as sent.
 */
export type Head = Record<string, unknown>;

export interface PreparedRequest {
  stream: boolean;
  promptTokens: number;
  requestedMaxTokens: number | null;
  /** The format's state, its big values emptied like the head. */
  state: unknown;
}

export type PrepareResult =
  | { ok: false; stage: 'body'; error: ErrorData }
  | {
      ok: true;
      head: Head;
      /** Absent when the body names no model this gateway serves (the main thread refuses it). */
      prepared?:
        | { ok: false; error: ErrorData }
        | { ok: true; deploymentId: string; parsed: PreparedRequest; request: { url: string; method: 'POST' | 'GET'; headers: Record<string, string> }; body: Uint8Array };
    };

export type AnswerResult =
  | { ok: false; error: ErrorData }
  /** `body` absent: the upstream's bytes go to the client as they are. */
  | { ok: true; usage: TokenUsage | null; completionTokens: number; body?: Uint8Array };
