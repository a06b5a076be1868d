/**
 * The call a piece of code is running for, found without passing it around.
 *
 * A handler that calls a neighbour must hand on its caller's deadline,
 * cancellation and identity. Rather than trusting every handler to thread
 * its context through by hand (and to never forget), the server runs each
 * handler inside an AsyncLocalStorage scope holding the call's
 * HandlerContext, and the client interceptors in neighbours.ts read it from
 * there. Code outside any call (start-up, background jobs) sees undefined.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect";

const calls = new AsyncLocalStorage<HandlerContext>();

/** Set by the server's request gate, which is the only code that sees the whole HandlerContext. */
export const handlerContextKey = createContextKey<HandlerContext | undefined>(undefined, {
  description: "the call's HandlerContext",
});

/** The call being handled, or undefined outside of one. */
export function currentCall(): HandlerContext | undefined {
  return calls.getStore();
}

/** Runs `fn` as part of `call`, e.g. work a handler hands to another tick. */
export function runInCall<T>(call: HandlerContext, fn: () => T): T {
  return calls.run(call, fn);
}

/**
 * Server interceptor: the rest of the call (later interceptors, the handler,
 * and a streaming handler's every step) runs in the call's scope.
 */
export function bindCallContext(): Interceptor {
  return (next) => (req) => {
    const call = req.contextValues.get(handlerContextKey);
    if (call === undefined) return next(req);
    return calls.run(call, async () => {
      const res = await next(req);
      if (!res.stream) return res;
      // A streaming handler's body runs when the response is read, outside
      // this scope, so each step is put back into it.
      return { ...res, message: stepInCall(call, res.message) };
    });
  };
}

/**
 * Each step of a stream (a streaming handler's body runs as it is read) in
 * the call's scope. An iterator rather than an async generator: a watch
 * steps thousands of streams per event, and a generator layer costs several
 * promises per step where this costs none of its own.
 */
export function stepInCall<T>(
  call: HandlerContext,
  messages: AsyncIterable<T>,
): AsyncIterableIterator<T> {
  const iterator = messages[Symbol.asyncIterator]();
  return {
    next: () => calls.run(call, () => iterator.next()),
    return: (value?: unknown) =>
      calls.run(call, () =>
        iterator.return
          ? iterator.return(value)
          : Promise.resolve({ done: true as const, value: value as T }),
      ),
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
