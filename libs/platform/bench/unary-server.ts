/**
 * Serves an in-memory UserService.GetUser one of three ways, for unary.ts:
 *   stock     connectNodeAdapter on node:http2, nothing else
 *   meridian  startServer: protocol sniffing, health, call observer, log line per call
 *   quiet     startServer with the per-call log line filtered out (LOG_LEVEL=warn)
 *   secured   meridian plus token verification in the request gate; prints
 *             "token <jwt>" for the load generator to send
 * Prints "port <n>" once listening.
 */
import http2 from "node:http2";
import { create } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { UserSchema, UserService } from "@meridian/proto/meridian/user/v1/user_pb";
import { createAuthenticate } from "../src/auth.js";
import { createLogger, logDestination } from "../src/logger.js";
import { startServer } from "../src/server.js";
import { generateSigningJwk, importSigningKey, TokenSigner, TokenVerifier } from "../src/tokens.js";

const user = create(UserSchema, {
  id: "8f0c4a52-7d0e-4c0e-9d5e-2b1a3c4d5e6f",
  email: "ada@example.com",
  name: "Ada",
});
const routes = (router: ConnectRouter) =>
  router.service(UserService, { getUser: () => ({ user }) });

const mode = process.argv[2] ?? "meridian";
if (mode === "stock") {
  const server = http2.createServer(connectNodeAdapter({ routes }));
  server.listen(0, "127.0.0.1", () => {
    process.stdout.write(`port ${(server.address() as { port: number }).port}\n`);
  });
} else {
  // The services' own logger (batched writes), writing to /dev/null.
  const logger = createLogger(
    "bench",
    mode === "quiet" ? "warn" : "info",
    logDestination("/dev/null"),
  );
  const key = await importSigningKey(JSON.stringify(await generateSigningJwk()));
  const verifier = new TokenVerifier({
    issuers: [{ issuer: "user-service", keys: [key], issuesUserTokens: true }],
  });
  if (mode === "secured") {
    const signer = new TokenSigner("user-service", key);
    const { token } = await signer.sign({
      subject: user.id,
      roles: ["customer"],
      ttlSeconds: 3600,
    });
    process.stdout.write(`token ${token}\n`);
  }
  const server = await startServer({
    authenticate: mode === "secured" ? createAuthenticate({ verifier }) : undefined,
    name: "bench",
    host: "127.0.0.1",
    port: 0,
    logger,
    services: [UserService],
    routes,
    readiness: async () => {},
    draining: new AbortController().signal,
    readMaxBytes: 4 * 1024 * 1024,
    deadlines: { defaultMs: 10_000, maxMs: 60_000 },
    shutdownGraceMs: 1000,
  });
  process.stdout.write(`port ${server.port}\n`);
}
