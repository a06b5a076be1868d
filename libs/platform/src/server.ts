/**
 * Serves one Meridian service on one port: the gRPC protocol over HTTP/2
 * cleartext, and the Connect (JSON and binary) and gRPC-Web protocols over
 * HTTP/1.1 or HTTP/2, so gRPC clients, browsers and plain curl all reach the
 * same handlers. Every server also hosts grpc.health.v1.Health.
 *
 * Shutdown is driven by the `draining` signal: once it aborts, the server
 * stops accepting connections, tells HTTP/2 clients to go elsewhere (GOAWAY),
 * lets in-flight calls finish (long-lived streams watch the same signal and
 * end themselves), and after `shutdownGraceMs` cancels whatever is left.
 */
import { once, setMaxListeners } from "node:events";
import http from "node:http";
import http2 from "node:http2";
import net, { type AddressInfo, type Socket } from "node:net";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  createContextValues,
  type HandlerContext,
  type Interceptor,
} from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Health } from "@meridian/proto/grpc/health/v1/health_pb";
import { bindCallContext, handlerContextKey } from "./call-context.js";
import { logRejectedCall, observeCalls, peerAddressKey } from "./call-observer.js";
import { type DeadlinePolicy, normalizeDeadline } from "./deadlines.js";
import { createHealthService } from "./health.js";
import type { Logger } from "./logger.js";
import { jwksDocument, jwksPath, type SigningKey } from "./tokens.js";

export interface ServerOptions {
  /** For logs, e.g. "user-service". */
  name: string;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  logger: Logger;
  /** The services that `routes` registers, reported by the health service. */
  services: readonly DescService[];
  routes: (router: ConnectRouter) => void;
  /** Resolves when the service can do its work (its database answers). */
  readiness: () => Promise<void>;
  /** Abort to shut the server down; `closed` settles when it is done. */
  draining: AbortSignal;
  /** Largest request message accepted, in bytes. */
  readMaxBytes: number;
  /** How long in-flight calls get to finish once draining starts. */
  shutdownGraceMs: number;
  /** Default and longest deadline of a call (see deadlines.ts). */
  deadlines: DeadlinePolicy;
  /**
   * Runs before a call's body is read (auth.ts's createAuthenticate); throw
   * to refuse the call. Without it every call is let in.
   */
  authenticate?: (context: HandlerContext) => void | Promise<void>;
  /** Public keys published at /.well-known/jwks.json for the tokens this service signs. */
  publishedKeys?: readonly SigningKey[];
  /** Interceptors run after the platform's own (error mapping and call log). */
  interceptors?: Interceptor[];
  /** Serves HTTP requests that are not RPCs (a 404 by default). */
  fallback?: Parameters<typeof connectNodeAdapter>[0]["fallback"];
  /** Health Watch poll period; tests shorten it. */
  healthWatchIntervalMs?: number;
}

export interface RunningServer {
  readonly port: number;
  /** http://host:port, for clients. */
  readonly url: string;
  /** Settles when the server has shut down after `draining` aborted. */
  readonly closed: Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { logger, draining } = options;
  const forceStop = new AbortController();
  // Connect links every in-flight call to it: many listeners are normal.
  setMaxListeners(0, forceStop.signal);

  const { authenticate } = options;
  const handler = connectNodeAdapter({
    routes(router) {
      options.routes(router);
      router.service(
        Health,
        createHealthService({
          services: options.services,
          readiness: options.readiness,
          draining,
          logger,
          watchIntervalMs: options.healthWatchIntervalMs,
        }),
      );
    },
    interceptors: [observeCalls(logger), bindCallContext(), ...(options.interceptors ?? [])],
    requestGate(context) {
      context.values.set(handlerContextKey, context);
      if (authenticate === undefined) return;
      const refuse = (error: unknown): never => {
        throw logRejectedCall(logger, context, error);
      };
      try {
        const admitted = authenticate(context);
        if (admitted instanceof Promise) return admitted.catch(refuse);
      } catch (error) {
        refuse(error);
      }
    },
    readMaxBytes: options.readMaxBytes,
    // Aborted only when the grace period runs out: calls still running then
    // end with UNAVAILABLE, which gRPC clients treat as "retry elsewhere".
    shutdownSignal: forceStop.signal,
    contextValues: (req) =>
      createContextValues().set(
        peerAddressKey,
        `${req.socket.remoteAddress}:${req.socket.remotePort}`,
      ),
    fallback: serveKeys(options.publishedKeys, options.fallback),
  });
  const methodKinds = new Map<string, DescMethod["methodKind"]>();
  for (const service of [...options.services, Health]) {
    for (const method of service.methods) {
      methodKinds.set(`/${service.typeName}/${method.name}`, method.methodKind);
    }
  }

  let inFlight = 0;
  let onIdle: (() => void) | undefined;
  const onRequest = (
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ) => {
    inFlight++;
    res.once("close", () => {
      if (--inFlight === 0) onIdle?.();
    });
    const url = req.url ?? "";
    const query = url.indexOf("?");
    const kind = methodKinds.get(query === -1 ? url : url.slice(0, query));
    if (kind !== undefined) normalizeDeadline(req.headers, kind, options.deadlines);
    handler(req, res);
  };
  const h2c = http2.createServer({}, onRequest);
  const h1 = http.createServer(onRequest);

  const sessions = new Set<http2.ServerHttp2Session>();
  h2c.on("session", (session) => {
    // Clients close idle connections after 5 minutes (neighbours.ts); one
    // that never does is sent away after 10, gracefully (GOAWAY).
    session.setTimeout(serverIdleSessionMs, () => session.close());
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  const sockets = new Set<Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    routeByProtocol(socket, h2c, h1);
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  // The HTTP/1.1 server never listens itself (connections are handed to it),
  // but Node starts its header and request timeouts, which guard against
  // slow-loris clients, on "listening".
  h1.emit("listening");
  const { port } = server.address() as AddressInfo;
  const url = `http://${options.host.includes(":") ? `[${options.host}]` : options.host}:${port}`;
  logger.info({ url }, `${options.name} listening`);

  const closed = new Promise<void>((resolve) => {
    const shutdown = async () => {
      logger.info({ inFlight }, "shutting down: no new connections, finishing in-flight calls");
      const listenerClosed = new Promise<void>((done) => server.close(() => done()));
      for (const session of sessions) session.close();
      // Idle keep-alive HTTP/1.1 connections would otherwise bring new calls.
      h1.closeIdleConnections();
      const idle = new Promise<void>((done) => {
        onIdle = done;
        if (inFlight === 0) done();
      });
      const graceOver = new Promise<boolean>((done) =>
        setTimeout(() => done(true), options.shutdownGraceMs).unref(),
      );
      if (await Promise.race([idle.then(() => false), graceOver])) {
        logger.warn({ inFlight }, "grace period over: cancelling the calls still running");
        forceStop.abort(new ConnectError("server is shutting down", Code.Unavailable));
        await Promise.race([idle, new Promise((done) => setTimeout(done, 1000).unref())]);
      }
      // Sessions were asked to close (GOAWAY) and do once their last stream's
      // final frames are out; destroying them sooner could cut those frames
      // off, and a watch would end in RST_STREAM instead of a clean end.
      await Promise.race([
        Promise.all([...sessions].map((session) => once(session, "close").catch(() => {}))),
        new Promise((done) => setTimeout(done, sessionCloseWaitMs).unref()),
      ]);
      // What remains are idle HTTP/1.1 keep-alive sockets and sessions whose
      // clients have not closed them yet.
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
      h1.close();
      h2c.close();
      await listenerClosed;
      logger.info("server closed");
      resolve();
    };
    if (draining.aborted) void shutdown();
    else draining.addEventListener("abort", () => void shutdown(), { once: true });
  });

  return { port, url, closed };
}

const serverIdleSessionMs = 10 * 60_000;
const sessionCloseWaitMs = 1_000;

type Fallback = NonNullable<ServerOptions["fallback"]>;

/** Serves the JWKS document (public, cacheable), and hands anything else to `fallback`. */
function serveKeys(keys: readonly SigningKey[] | undefined, fallback: Fallback | undefined) {
  if (keys === undefined || keys.length === 0) return fallback;
  const body = JSON.stringify(jwksDocument(keys));
  const serve: Fallback = (req, res) => {
    if (req.url === jwksPath && (req.method === "GET" || req.method === "HEAD")) {
      res.writeHead(200, {
        "content-type": "application/jwk-set+json",
        "cache-control": "public, max-age=300",
        "content-length": Buffer.byteLength(body),
      });
      if (req.method === "HEAD") res.end();
      else res.end(body);
      return;
    }
    if (fallback) return fallback(req, res);
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found\n");
  };
  return serve;
}

/** Every HTTP/2 connection opens with this preface; no HTTP/1.x request can. */
const http2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const firstBytesTimeoutMs = 10_000;

/**
 * Hands a new connection to the HTTP/2 or the HTTP/1.1 server by its first
 * bytes. Node 20 cannot serve both on one cleartext port by itself
 * (`allowHTTP1` works only with TLS), and Meridian wants gRPC clients and
 * curl on the same port. The bytes read stay buffered on the socket: both
 * servers consume buffered data first, so no copy or wrapper stays in the
 * path afterwards.
 */
function routeByProtocol(socket: Socket, h2c: http2.Http2Server, h1: http.Server): void {
  socket.setTimeout(firstBytesTimeoutMs, () => socket.destroy());
  let received: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
    const n = Math.min(received.length, http2Preface.length);
    const isHttp2 = received.subarray(0, n).equals(http2Preface.subarray(0, n));
    // "P" could still be POST or PRI; wait for a byte that tells them apart.
    if (isHttp2 && n < 3) return;
    socket.off("data", onData);
    socket.setTimeout(0);
    socket.pause();
    socket.unshift(received);
    if (isHttp2) {
      h2c.emit("connection", socket);
    } else {
      h1.emit("connection", socket);
      socket.resume();
    }
  };
  socket.on("data", onData);
}
