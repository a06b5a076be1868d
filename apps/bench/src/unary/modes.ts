/**
 * The ways the unary bench serves UserService.GetUser, each answering with
 * the same fixed user (samples.ts). A mode is one entry in `unaryModes`:
 * server-process.ts starts it in a process of its own, and the bench loads
 * it, probes it and prints it as one row, in the order listed here.
 */
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create, toBinary, toJson } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import {
  createAuthenticate,
  createLogger,
  importSigningKey,
  logDestination,
  type ServerOptions,
  startServer,
  TokenVerifier,
} from "@meridian/platform";
import {
  GetUserResponseSchema,
  UserSchema,
  UserService,
} from "@meridian/proto/meridian/user/v1/user_pb";
import { fastify } from "fastify";
import { sampleUser } from "../samples.js";
import { grpcJsDefinition } from "./grpc-js.js";

export interface UnaryMode {
  /** The row's name in the table. */
  label: string;
  /** gRPC over HTTP/2 (POST /meridian.user.v1.UserService/GetUser), or REST over HTTP/1.1 (GET /users/:id). */
  protocol: "grpc" | "rest";
  /** The client that checks every answer before the load: only a real client sees grpc-status. */
  probe: "connect" | "grpc-js" | "rest";
  /** Starts serving on `host` in this process; resolves with the port. */
  serve(host: string): Promise<number>;
}

/** Meridian's server verifies tokens signed with this key (a private JWK, JSON); the bench signs one. */
export const signingKeyVariable = "BENCH_SIGNING_KEY";

export const unaryModes = {
  meridian: {
    label: "Meridian (startServer)",
    protocol: "grpc",
    probe: "connect",
    serve: (host) => serveMeridian(host),
  },
  "meridian-stock": {
    label: "Meridian, stock adapter",
    protocol: "grpc",
    probe: "connect",
    serve: (host) => serveMeridian(host, { serverPath: "stock" }),
  },
  connect: {
    label: "Connect node adapter",
    protocol: "grpc",
    probe: "connect",
    serve: serveConnectAdapter,
  },
  "grpc-js": { label: "@grpc/grpc-js", protocol: "grpc", probe: "grpc-js", serve: serveGrpcJs },
  fastify: { label: "Fastify REST+JSON", protocol: "rest", probe: "rest", serve: serveFastify },
  ceiling: { label: "node:http2, canned", protocol: "grpc", probe: "connect", serve: serveCanned },
} satisfies Record<string, UnaryMode>;

export type UnaryModeName = keyof typeof unaryModes;

export const getUserPath = `/${UserService.typeName}/${UserService.method.getUser.name}`;

/** A gRPC message on the wire: not compressed (0), 4-byte big-endian length, the bytes. */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

const routes = (router: ConnectRouter) =>
  router.service(UserService, { getUser: () => ({ user: sampleUser }) });

/**
 * What a Meridian service runs for every call: the request gate verifying a
 * bearer token (cached after the first call, as in production), deadline
 * normalization, the call observer with its log line at LOG_LEVEL=info
 * (production format, written to /dev/null), health. `options` overrides
 * any ServerOptions, for variants of this row.
 */
async function serveMeridian(host: string, options: Partial<ServerOptions> = {}) {
  const jwk = process.env[signingKeyVariable];
  if (jwk === undefined) throw new Error(`${signingKeyVariable} is not set`);
  const verifier = new TokenVerifier({
    issuers: [
      { issuer: "user-service", keys: [await importSigningKey(jwk)], issuesUserTokens: true },
    ],
  });
  const server = await startServer({
    name: "bench",
    host,
    port: 0,
    logger: createLogger("bench", "info", logDestination("/dev/null")),
    services: [UserService],
    routes,
    authenticate: createAuthenticate({ verifier }),
    readiness: async () => {},
    draining: new AbortController().signal,
    readMaxBytes: 4 * 1024 * 1024,
    deadlines: { defaultMs: 10_000, maxMs: 60_000 },
    shutdownGraceMs: 1000,
    ...options,
  });
  return server.port;
}

async function listen(server: http2.Http2Server, host: string): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as AddressInfo).port;
}

function serveConnectAdapter(host: string) {
  return listen(http2.createServer(connectNodeAdapter({ routes })), host);
}

function serveGrpcJs(host: string) {
  const server = new Server();
  server.addService(grpcJsDefinition(UserService), {
    getUser: (
      _call: unknown,
      respond: (
        error: null,
        response: ReturnType<typeof create<typeof GetUserResponseSchema>>,
      ) => void,
    ) => respond(null, create(GetUserResponseSchema, { user: sampleUser })),
  });
  return new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:0`, ServerCredentials.createInsecure(), (error, port) =>
      error ? reject(error) : resolve(port),
    ),
  );
}

/** The REST service one would write instead: a plain object, JSON.stringify'd by Fastify per call. */
async function serveFastify(host: string) {
  const app = fastify();
  const user = toJson(UserSchema, sampleUser);
  app.get("/users/:id", async () => user);
  await app.listen({ host, port: 0 });
  return (app.server.address() as AddressInfo).port;
}

/**
 * The ceiling: Node's HTTP/2 answering each stream, once its request has
 * arrived, with a gRPC response serialized once up front. No routing,
 * parsing or serializing per call: what any Node gRPC server pays at least.
 */
function serveCanned(host: string) {
  const response = grpcFrame(
    toBinary(GetUserResponseSchema, create(GetUserResponseSchema, { user: sampleUser })),
  );
  const server = http2.createServer();
  server.on("stream", (stream) => {
    stream.on("error", () => {});
    stream.resume();
    stream.once("end", () => {
      stream.respond(
        { ":status": 200, "content-type": "application/grpc" },
        { waitForTrailers: true },
      );
      stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(response);
    });
  });
  return listen(server, host);
}
