/**
 * What happens to every call a Meridian server takes, in one place, whichever
 * path serves it: Connect's universal handler (client and bidi streams, the
 * Connect and gRPC-Web protocols) or the direct path for unary and
 * server-streaming gRPC (grpc-fast-path.ts).
 * Both run exactly these steps, so a call behaves the same on either:
 *
 * 1. `admit`, before the request body is read: keep the HandlerContext for
 *    outgoing calls and authenticate; a refused call is logged and answered
 *    with the error, its body never read.
 * 2. `unary` or `serverStream` (for Connect, the same steps as
 *    interceptors): run the handler in the call's AsyncLocalStorage scope,
 *    map what it throws to a gRPC status, and write the call's one log line.
 */
import type { HandlerContext, Interceptor } from "@connectrpc/connect";
import { bindCallContext, handlerContextKey, runInCall, stepInCall } from "./call-context.js";
import {
  logRejectedCall,
  observeCalls,
  observeServerStream,
  observeUnary,
} from "./call-observer.js";
import type { Logger } from "./logger.js";

export interface CallPipeline {
  /** Runs when a call's headers have arrived; throws (a ConnectError) to refuse it. */
  admit(call: HandlerContext): void | Promise<void>;
  /** Runs a unary call's handler: `invoke` calls the implementation. */
  unary<T>(call: HandlerContext, invoke: () => Promise<T>): Promise<T>;
  /** A server-streaming handler's responses (`open` calls the implementation), each step in scope. */
  serverStream<T>(call: HandlerContext, open: () => AsyncIterable<T>): AsyncIterable<T>;
  /** The same steps as Connect interceptors, for the calls Connect serves. */
  readonly interceptors: Interceptor[];
}

export interface CallPipelineOptions {
  logger: Logger;
  /** Throws to refuse a call (auth.ts's createAuthenticate); without it every call is let in. */
  authenticate?: (call: HandlerContext) => void | Promise<void>;
  /** Run after the platform's own, inside the call's scope. */
  interceptors?: Interceptor[];
}

export function createCallPipeline({
  logger,
  authenticate,
  interceptors = [],
}: CallPipelineOptions): CallPipeline {
  const refuse =
    (call: HandlerContext) =>
    (error: unknown): never => {
      throw logRejectedCall(logger, call, error);
    };

  const admit = (call: HandlerContext): void | Promise<void> => {
    call.values.set(handlerContextKey, call);
    if (authenticate === undefined) return;
    try {
      const admitted = authenticate(call);
      if (admitted instanceof Promise) return admitted.catch(refuse(call));
    } catch (error) {
      refuse(call)(error);
    }
  };

  const observe = observeUnary(logger);
  const unary = <T>(call: HandlerContext, invoke: () => Promise<T>): Promise<T> =>
    observe(call, () => runInCall(call, invoke));

  const observeStream = observeServerStream(logger);
  const serverStream = <T>(call: HandlerContext, open: () => AsyncIterable<T>) =>
    observeStream(call, stepInCall(call, runInCall(call, open)));

  // Connect's interceptors see unary calls too (those it serves: Connect and
  // gRPC-Web protocols, compressed or JSON gRPC). They take the same `unary`
  // path; streams go through the streaming observer and scope.
  const unaryFirst: Interceptor = (next) => (req) => {
    const call = req.contextValues.get(handlerContextKey);
    if (req.stream || call === undefined) return next(req);
    return unary(call, () => next(req));
  };
  const streamsOnly =
    (interceptor: Interceptor): Interceptor =>
    (next) => {
      const intercepted = interceptor(next);
      return (req) => (req.stream ? intercepted(req) : next(req));
    };

  return {
    admit,
    unary,
    serverStream,
    interceptors: [
      unaryFirst,
      streamsOnly(observeCalls(logger)),
      streamsOnly(bindCallContext()),
      ...interceptors,
    ],
  };
}
