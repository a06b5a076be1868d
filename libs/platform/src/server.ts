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
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import net, { type AddressInfo, type Socket } from "node:net";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  type ContextKey,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
} from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import { Health } from "@meridian/proto/grpc/health/v1/health_pb";
import { peerAddressKey } from "./call-observer.js";
import { createCallPipeline } from "./call-pipeline.js";
import { type DeadlinePolicy, normalizeDeadline } from "./deadlines.js";
import { GrpcFastPath } from "./grpc-fast-path.js";
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
  /**
   * "fast" (the default) serves unary and server-streaming gRPC calls with
   * binary protobuf on the direct path (grpc-fast-path.ts) and everything
   * else with Connect;
   * "stock" serves every call with Connect's node adapter.
   */
  serverPath?: ServerPath;
}

export type ServerPath = "fast" | "stock";
export const serverPaths: readonly ServerPath[] = ["fast", "stock"];

export interface RunningServer {
  readonly port: number;
  /** http://host:port, for clients. */
  readonly url: string;
  /** Settles when the server has shut down after `draining` aborted. */
  readonly closed: Promise<void>;
  /** How many calls the direct gRPC path has served (0 with serverPath "stock"). */
  readonly directCalls: number;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { logger, draining } = options;
  const forceStop = new AbortController();
  // Connect links every in-flight call to it: many listeners are normal.
  setMaxListeners(0, forceStop.signal);

  const pipeline = createCallPipeline({
    logger,
    authenticate: options.authenticate,
    interceptors: options.interceptors,
  });
  const peerAddress = (socket: Socket | undefined) =>
    `${socket?.remoteAddress}:${socket?.remotePort}`;
  const contextValues = (peer: string) => new CallValues().set(peerAddressKey, peer);
  // One HTTP/2 connection carries many calls from one peer: its address is made once.
  const sessionPeers = new WeakMap<http2.Http2Session, string>();
  const streamPeer = (stream: ServerHttp2Stream) => {
    const session = stream.session;
    if (session === undefined) return peerAddress(undefined);
    let peer = sessionPeers.get(session);
    if (peer === undefined) {
      peer = peerAddress(session.socket as Socket);
      sessionPeers.set(session, peer);
    }
    return peer;
  };
  const acceptCompression = [compressionGzip, compressionBrotli];
  // Interceptors of the caller's own are Connect interceptors: only Connect can run them.
  const fastPath =
    (options.serverPath ?? "fast") === "fast" && (options.interceptors ?? []).length === 0
      ? new GrpcFastPath({
          pipeline,
          readMaxBytes: options.readMaxBytes,
          acceptCompression,
          compressMinBytes,
          shutdownSignal: forceStop.signal,
          contextValues: (stream) => contextValues(streamPeer(stream)),
        })
      : undefined;
  const handler = connectNodeAdapter({
    routes(connectRouter) {
      const router = fastPath?.record(connectRouter) ?? connectRouter;
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
    interceptors: pipeline.interceptors,
    requestGate: pipeline.admit,
    readMaxBytes: options.readMaxBytes,
    acceptCompression,
    compressMinBytes,
    // Aborted only when the grace period runs out: calls still running then
    // end with UNAVAILABLE, which gRPC clients treat as "retry elsewhere".
    shutdownSignal: forceStop.signal,
    contextValues: (req) => contextValues(peerAddress(req.socket as Socket)),
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
  const untrack = () => {
    if (--inFlight === 0) onIdle?.();
  };
  const track = (closes: { once(event: "close", listener: () => void): unknown }) => {
    inFlight++;
    closes.once("close", untrack);
  };
  /** The procedure's path (the URL without a query), its deadline header normalized. */
  const normalize = (url: string, headers: http.IncomingHttpHeaders) => {
    const query = url.indexOf("?");
    const path = query === -1 ? url : url.slice(0, query);
    const kind = methodKinds.get(path);
    if (kind !== undefined) normalizeDeadline(headers, kind, options.deadlines);
    return path;
  };
  const h1 = http.createServer((req, res) => {
    track(res);
    normalize(req.url ?? "", req.headers);
    handler(req, res);
  });
  // HTTP/2 streams arrive raw: the direct path takes what it can, and the
  // rest become the request/response pair Connect's adapter expects, made
  // as node:http2's compatibility layer would make them.
  const h2c = http2.createServer({});
  const onStream = (
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    _flags: number,
    rawHeaders: string[],
  ) => {
    track(stream);
    const path = normalize(headers[":path"] ?? "", headers);
    if (fastPath?.serve(stream, headers, path)) return;
    const req = new http2.Http2ServerRequest(stream, headers, {}, rawHeaders);
    const res = new http2.Http2ServerResponse(stream);
    if (headers.expect === "100-continue") res.writeContinue();
    handler(req, res);
  };
  h2c.on("stream", onStream);
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
  logger.info({ url, serverPath: fastPath ? "fast" : "stock" }, `${options.name} listening`);

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

  return {
    port,
    url,
    closed,
    get directCalls() {
      return fastPath?.served ?? 0;
    },
  };
}

/**
 * A call's context values, as Connect's createContextValues keeps them (by
 * each key's symbol, on the object itself), with the methods on the
 * prototype: Connect's object literal makes three new functions per call.
 */
class CallValues implements ContextValues {
  get<T>(key: ContextKey<T>): T {
    const own = this as unknown as Record<symbol, T>;
    return key.id in own ? (own[key.id] as T) : key.defaultValue;
  }

  set<T>(key: ContextKey<T>, value: T): this {
    (this as unknown as Record<symbol, T>)[key.id] = value;
    return this;
  }

  delete(key: ContextKey<unknown>): this {
    delete (this as unknown as Record<symbol, unknown>)[key.id];
    return this;
  }
}

const serverIdleSessionMs = 10 * 60_000;
/** Connect's default: smaller responses are not worth compressing. */
const compressMinBytes = 1024;
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
