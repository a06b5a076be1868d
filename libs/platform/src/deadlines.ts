/**
 * Deadlines: every call has one, and all the work it causes fits inside it.
 *
 * Server side, `normalizeDeadline` rewrites the caller's timeout header
 * before Connect reads it: a unary call without a deadline gets the
 * service's default, and an absurd one is capped. Streams (watch feeds, cart
 * sessions, imports) last as long as their client needs and get neither;
 * calls they make to neighbours still get the neighbour's default. Connect then enforces the result, so the handler's
 * `signal` and `timeoutMs()` are the truth for everything downstream.
 *
 * Client side, `propagateDeadline` gives every outgoing call the time the
 * current call has left, less a margin for the trip back, and links the two
 * so that a caller who cancels cancels the whole tree.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { currentCall } from "./call-context.js";

export interface DeadlinePolicy {
  /** Applied to unary calls that arrive without a deadline. */
  defaultMs: number;
  /** Longer unary deadlines are cut to this (streams: to the timer limit). */
  maxMs: number;
}

/** setTimeout's limit (~24.8 days); Node fires longer timers after 1 ms. */
const timerLimitMs = 2_147_483_647;

const grpcUnits: Record<string, number> = {
  H: 3_600_000,
  M: 60_000,
  S: 1_000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};

/**
 * Rewrites the timeout header of one request in place. Unparseable values
 * are left alone for Connect to reject with its own INVALID_ARGUMENT.
 */
export function normalizeDeadline(
  headers: IncomingHttpHeaders,
  methodKind: DescMethod["methodKind"],
  policy: DeadlinePolicy,
): void {
  const grpc = headers["content-type"]?.startsWith("application/grpc") ?? false;
  const name = grpc ? "grpc-timeout" : "connect-timeout-ms";
  const raw = headers[name];
  // A stream lasts as long as its client needs (a watch, a cart being
  // edited, a bulk import): no default, and only the timer's own limit.
  const stream = methodKind !== "unary";
  const maxMs = stream ? timerLimitMs : policy.maxMs;
  let timeoutMs: number | undefined;
  if (typeof raw === "string") {
    timeoutMs = grpc ? parseGrpcTimeout(raw) : parseConnectTimeout(raw);
    if (timeoutMs === undefined || timeoutMs <= maxMs) return;
  } else if (stream) {
    return;
  }
  const ms = Math.min(timeoutMs ?? policy.defaultMs, maxMs);
  headers[name] = grpc ? formatGrpcTimeout(ms) : `${ms}`;
}

/**
 * A grpc-timeout value for `ms`, rounded down so it never grants more time.
 * The protocol allows at most 8 digits, so long timeouts use a coarser unit.
 */
export function formatGrpcTimeout(ms: number): string {
  const whole = Math.floor(ms);
  if (whole < 100_000_000) return `${whole}m`;
  const seconds = Math.floor(whole / 1000);
  if (seconds < 100_000_000) return `${seconds}S`;
  return `${Math.min(Math.floor(seconds / 3600), 99_999_999)}H`;
}

function parseGrpcTimeout(raw: string): number | undefined {
  const match = /^(\d{1,8})([HMSmun])$/.exec(raw);
  if (match === null) return undefined;
  return Number(match[1]) * (grpcUnits[match[2] as string] as number);
}

function parseConnectTimeout(raw: string): number | undefined {
  return /^\d{1,10}$/.test(raw) ? Number(raw) : undefined;
}

/**
 * Client interceptor: an outgoing call made while handling a call gets its
 * remaining time less `marginMs`, and ends when it ends. When no time is
 * left the call is not made at all (Connect would read a timeout of 0 as
 * "no deadline").
 */
export function propagateDeadline(marginMs: number): Interceptor {
  return (next) => async (req) => {
    const call = currentCall();
    if (call === undefined) return next(req);
    if (call.signal.aborted) throw ConnectError.from(call.signal.reason, Code.Canceled);
    const remainingMs = call.timeoutMs();
    if (remainingMs === undefined) {
      return next({ ...req, signal: AbortSignal.any([req.signal, call.signal]) });
    }
    const budgetMs = Math.floor(remainingMs - marginMs);
    const rpc = `${req.service.typeName}/${req.method.name}`;
    if (budgetMs <= 0) {
      throw new ConnectError(
        `no time left to call ${rpc}: the caller's deadline is ${Math.max(0, Math.round(remainingMs))} ms away`,
        Code.DeadlineExceeded,
      );
    }
    const grpc = req.header.get("content-type")?.startsWith("application/grpc") ?? false;
    const ownTimeout = readTimeoutHeader(req.header, grpc);
    if (ownTimeout === undefined || ownTimeout > budgetMs) {
      req.header.set(
        grpc ? "grpc-timeout" : "connect-timeout-ms",
        grpc ? formatGrpcTimeout(budgetMs) : `${budgetMs}`,
      );
    }
    const deadline = new AbortController();
    const timer = setTimeout(
      () => deadline.abort(new ConnectError(`${rpc} ran out of time`, Code.DeadlineExceeded)),
      Math.min(budgetMs, ownTimeout ?? budgetMs),
    );
    try {
      return await next({
        ...req,
        signal: AbortSignal.any([req.signal, call.signal, deadline.signal]),
      });
    } finally {
      // A stream's body may still be arriving; the server enforces the
      // timeout header, and the caller's own signal still ends it.
      clearTimeout(timer);
    }
  };
}

function readTimeoutHeader(header: Headers, grpc: boolean): number | undefined {
  const raw = header.get(grpc ? "grpc-timeout" : "connect-timeout-ms");
  if (raw === null) return undefined;
  return grpc ? parseGrpcTimeout(raw) : parseConnectTimeout(raw);
}
