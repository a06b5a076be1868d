/**
 * The one server interceptor every Meridian call passes through: it maps
 * errors to gRPC status codes (see errors.ts) and writes one log line per
 * call with the method, the status code, the duration and the peer.
 *
 * It is on every call's hot path, so it does the least it can: one clock read
 * at each end, no allocation for unary calls beyond the log record, and
 * streams are wrapped only when the response is a stream.
 */
import {
  Code,
  ConnectError,
  createContextKey,
  type HandlerContext,
  type Interceptor,
} from "@connectrpc/connect";
import { callEndedCodes, toConnectError } from "./errors.js";
import { callLogWriter, type Logger } from "./logger.js";

/** The caller's address ("ip:port"), set by the server for each request. */
export const peerAddressKey = createContextKey<string>("", { description: "peer address" });

/** gRPC's canonical names (OK, NOT_FOUND, ...), as operators search for them. */
const statusNames: readonly string[] = [
  "OK",
  ...Object.values(Code)
    .filter((code): code is Code => typeof code === "number")
    .sort((a, b) => a - b)
    .map((code) =>
      // Connect spells code 1 "Canceled"; gRPC's canonical name is CANCELLED.
      code === Code.Canceled
        ? "CANCELLED"
        : Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase(),
    ),
];

/** A code's canonical gRPC name, e.g. DEADLINE_EXCEEDED, as logs and people use it. */
export function statusName(code: Code | 0): string {
  return statusNames[code] ?? String(code);
}

/** Codes that mean "the server or a dependency failed", not "the caller erred". */
const serverFaults = new Set([
  Code.Unknown,
  Code.Internal,
  Code.Unavailable,
  Code.DataLoss,
  Code.Unimplemented,
]);

interface CallIdentity {
  service: { typeName: string };
  method: { name: string };
}

function logCall(
  logger: Logger,
  call: CallIdentity,
  peer: string,
  started: number,
  code: Code | 0,
  error?: ConnectError,
): void {
  const ms = Math.round((performance.now() - started) * 100) / 100;
  const rpc = `${call.service.typeName}/${call.method.name}`;
  // {rpc, code, ms, peer, error?}, as JSON; service and method names need no escaping.
  const fields =
    `"rpc":"${rpc}","code":"${statusNames[code]}","ms":${ms},"peer":${JSON.stringify(peer)}` +
    (error === undefined ? "" : `,"error":${JSON.stringify(error.rawMessage)}`);
  callLog(logger)(code !== 0 && serverFaults.has(code) ? "warn" : "info", fields);
}

const writers = new WeakMap<Logger, ReturnType<typeof callLogWriter>>();
function callLog(logger: Logger) {
  let write = writers.get(logger);
  if (write === undefined) {
    write = callLogWriter(logger);
    writers.set(logger, write);
  }
  return write;
}

function internalErrorLogger(logger: Logger, call: CallIdentity) {
  return (error: unknown) =>
    logger.error(
      { err: error, service: call.service.typeName, procedure: call.method.name },
      "unexpected error",
    );
}

/**
 * A call refused before it reached the interceptors (by the request gate):
 * the same log line as any other call, and the error to send.
 */
export function logRejectedCall(
  logger: Logger,
  context: HandlerContext,
  error: unknown,
): ConnectError {
  const connectError = toConnectError(error, internalErrorLogger(logger, context));
  const peer = context.values.get(peerAddressKey);
  logCall(logger, context, peer, performance.now(), connectError.code, connectError);
  return connectError;
}

/**
 * A unary call, observed: `invoke` runs the handler; what it throws comes
 * back as the ConnectError to send, and the call's log line is written.
 * The direct gRPC path and Connect's interceptors both run this.
 */
export function observeUnary(logger: Logger) {
  return async <T>(call: HandlerContext, invoke: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      const result = await invoke();
      logCall(logger, call, call.values.get(peerAddressKey), started, 0);
      return result;
    } catch (error) {
      const connectError = endedCallError(error, call.signal, internalErrorLogger(logger, call));
      logCall(
        logger,
        call,
        call.values.get(peerAddressKey),
        started,
        connectError.code,
        connectError,
      );
      throw connectError;
    }
  };
}

/** What a handler threw, as the error its caller gets. */
function endedCallError(
  error: unknown,
  signal: AbortSignal,
  onInternal: (error: unknown) => void,
): ConnectError {
  return signal.aborted && error === signal.reason
    ? whyTheCallEnded(error)
    : toConnectError(error, onInternal);
}

/**
 * A server-streaming call's responses, observed as the interceptor below
 * observes them: the log line when the stream ends, fails or is abandoned,
 * and what it throws mapped to the error to send. The direct path runs this.
 */
export function observeServerStream(logger: Logger) {
  return <T>(call: HandlerContext, responses: AsyncIterable<T>): AsyncIterable<T> => {
    const started = performance.now();
    const finish = (code: Code | 0, error?: ConnectError) =>
      logCall(logger, call, call.values.get(peerAddressKey), started, code, error);
    return observeStream(responses, finish, internalErrorLogger(logger, call));
  };
}

export function observeCalls(logger: Logger): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    const onInternal = internalErrorLogger(logger, req);
    const finish = (code: Code | 0, error?: ConnectError) =>
      logCall(logger, req, req.contextValues.get(peerAddressKey), started, code, error);
    try {
      // Only a streaming *request* can leave a handler waiting on the client;
      // server-streaming calls are "stream" requests too, but of one message.
      const streamsRequest =
        req.method.methodKind === "client_streaming" || req.method.methodKind === "bidi_streaming";
      const res = await next(
        req.stream && streamsRequest
          ? { ...req, message: endOnAbort(req.message, req.signal) }
          : req,
      );
      if (!res.stream) {
        finish(0);
        return res;
      }
      return { ...res, message: observeStream(res.message, finish, onInternal) };
    } catch (error) {
      const connectError = endedCallError(error, req.signal, onInternal);
      finish(connectError.code, connectError);
      throw connectError;
    }
  };
}

/**
 * A handler gave up because its call ended (it threw the call signal's
 * reason): the reason when it says what happened (the deadline, a cancel,
 * the server shutting down), otherwise the caller went away. Connect-node
 * clients reset the HTTP/2 stream with INTERNAL_ERROR when their own
 * deadline passes, which the server reads as INTERNAL; that is the caller
 * leaving, not a fault of this service.
 */
function whyTheCallEnded(reason: unknown): ConnectError {
  if (reason instanceof ConnectError && callEndedCodes.has(reason.code)) return reason;
  return new ConnectError("the caller went away", Code.Canceled, undefined, undefined, reason);
}

/**
 * A stream's responses, passed on as they come, with `finish` called once:
 * when it ends (OK), fails (the error, mapped to what the client gets), or
 * is abandoned by its reader (CANCELLED: the client went away). An iterator
 * rather than an async generator, for the reason stepInCall gives.
 */
function observeStream<T>(
  stream: AsyncIterable<T>,
  finish: (code: Code | 0, error?: ConnectError) => void,
  onInternal: (error: unknown) => void,
): AsyncIterableIterator<T> {
  const iterator = stream[Symbol.asyncIterator]();
  let ended = false;
  const settled: IteratorReturnResult<undefined> = { done: true, value: undefined };
  return {
    next() {
      if (ended) return Promise.resolve(settled);
      return iterator.next().then(
        (step) => {
          if (step.done) {
            ended = true;
            finish(0);
          }
          return step;
        },
        (error: unknown) => {
          ended = true;
          const connectError = toConnectError(error, onInternal);
          finish(connectError.code, connectError);
          throw connectError;
        },
      );
    },
    async return(value?: unknown) {
      if (ended) return { done: true, value: value as T };
      ended = true;
      try {
        await iterator.return?.(value);
      } finally {
        finish(Code.Canceled);
      }
      return { done: true, value: value as T };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/**
 * A client or bidi stream's messages, ending with the call's abort reason
 * (deadline, client gone, server out of grace) instead of waiting forever
 * for a client that sends nothing more. Without it, a handler blocked on the
 * next request message never learns that its call is over.
 */
async function* endOnAbort<T>(messages: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  const iterator = messages[Symbol.asyncIterator]();
  let rejectAborted: (reason: unknown) => void = () => {};
  const aborted = new Promise<never>((_, reject) => {
    rejectAborted = reject;
  });
  aborted.catch(() => {});
  const onAbort = () => rejectAborted(signal.reason);
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), aborted]);
      if (next.done) return;
      yield next.value;
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    void iterator.return?.()?.catch(() => {});
  }
}
