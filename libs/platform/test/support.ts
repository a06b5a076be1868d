/**
 * Shared by the platform's wire tests: a real server (startServer) on a
 * loopback port hosting a few UserService methods, hand-made handler
 * contexts for unit tests, and small promise helpers.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import {
  type ConnectRouter,
  type ContextValues,
  createContextValues,
  createHandlerContext,
  type HandlerContext,
  type ServiceImpl,
} from "@connectrpc/connect";
import { UserService } from "@meridian/proto/meridian/user/v1/user_pb";
import { pino } from "pino";
import { principalKey } from "../src/auth.js";
import type { DeadlinePolicy } from "../src/deadlines.js";
import type { Logger } from "../src/logger.js";
import { type RunningServer, type ServerOptions, startServer } from "../src/server.js";
import type { Principal } from "../src/tokens.js";

export const silentLogger: Logger = pino({ level: "silent" });

export const testDeadlines: DeadlinePolicy = { defaultMs: 5_000, maxMs: 20_000 };

export interface TestServer extends RunningServer {
  stop(): Promise<void>;
}

export interface TestServerOptions extends Partial<Omit<ServerOptions, "routes">> {
  /** UserService methods to host; the others answer UNIMPLEMENTED. */
  users?: Partial<ServiceImpl<typeof UserService>>;
  routes?: (router: ConnectRouter) => void;
}

/** startServer on 127.0.0.1 with a free port and test-friendly defaults. */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const draining = new AbortController();
  const { users, routes, ...rest } = options;
  const server = await startServer({
    name: "test-service",
    host: "127.0.0.1",
    port: 0,
    logger: silentLogger,
    services: users === undefined ? [] : [UserService],
    readiness: async () => {},
    readMaxBytes: 1024 * 1024,
    shutdownGraceMs: 200,
    deadlines: testDeadlines,
    ...rest,
    draining: draining.signal,
    routes(router) {
      if (users !== undefined) router.service(UserService, users);
      routes?.(router);
    },
  });
  return {
    port: server.port,
    url: server.url,
    closed: server.closed,
    get directCalls() {
      return server.directCalls;
    },
    stop() {
      draining.abort();
      return server.closed;
    },
  };
}

/** A HandlerContext as a server would make it, for code that reads one. */
export function handlerContext(
  init: {
    method?: DescMethod;
    timeoutMs?: number;
    requestHeader?: Record<string, string>;
    requestSignal?: AbortSignal;
    values?: ContextValues;
  } = {},
): HandlerContext & { abort(reason?: unknown): void } {
  const method = init.method ?? UserService.method.getUser;
  return createHandlerContext({
    service: method.parent,
    method,
    protocolName: "grpc",
    requestMethod: "POST",
    url: `http://127.0.0.1/${method.parent.typeName}/${method.name}`,
    timeoutMs: init.timeoutMs,
    requestHeader: init.requestHeader,
    requestSignal: init.requestSignal,
    contextValues: init.values,
  });
}

/** A handler context of a call made by `principal` (or by no one). */
export function contextOf(principal: Principal | undefined): HandlerContext {
  const values = createContextValues();
  if (principal !== undefined) values.set(principalKey, principal);
  return handlerContext({ values });
}

/** A promise with its resolve function, for "this happened" signals between handlers and tests. */
export function signal<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => {};
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Rejects if `promise` has not settled within `ms` (tests that must not hang). */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Resolves when `signal` aborts (with its reason). */
export function aborted(signal: AbortSignal): Promise<unknown> {
  if (signal.aborted) return Promise.resolve(signal.reason);
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(signal.reason), { once: true }),
  );
}
