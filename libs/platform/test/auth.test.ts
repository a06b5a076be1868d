/**
 * Authentication in startServer's request gate (createAuthenticate), the
 * JWKS route every server publishes, and the authorization helpers.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Code } from "@connectrpc/connect";
import { Health } from "@meridian/proto/grpc/health/v1/health_pb";
import { UserService } from "@meridian/proto/meridian/user/v1/user_pb";
import {
  type CapturedLogs,
  callError,
  captureLogs,
  createTestClient,
  protocols,
} from "@meridian/testkit";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createAuthenticate,
  isAdmin,
  principalOf,
  requireAdmin,
  requireSelfOrAdmin,
  requireServiceOrAdmin,
  scopeToCaller,
} from "../src/auth.js";
import { PermissionDeniedError, UnauthenticatedError } from "../src/errors.js";
import {
  generateSigningJwk,
  importSigningKey,
  jwksPath,
  type Principal,
  type SigningKey,
  TokenSigner,
  TokenVerifier,
} from "../src/tokens.js";
import { contextOf, signal, startTestServer, type TestServer, within } from "./support.js";

const newKey = async () => importSigningKey(JSON.stringify(await generateSigningJwk()));

const getUserRpc = "meridian.user.v1.UserService/GetUser";

describe("authentication through startServer", () => {
  let server: TestServer;
  let logs: CapturedLogs;
  let key: SigningKey;
  let users: TokenSigner;
  let orders: TokenSigner;
  const principals: Principal[] = [];
  let handled = 0;

  beforeAll(async () => {
    logs = captureLogs();
    key = await newKey();
    const orderKey = await newKey();
    users = new TokenSigner("user-service", key);
    orders = new TokenSigner("order-service", orderKey);
    const verifier = new TokenVerifier({
      issuers: [
        { issuer: "user-service", keys: [key], issuesUserTokens: true },
        { issuer: "order-service", keys: [orderKey], issuesUserTokens: false },
      ],
    });
    server = await startTestServer({
      logger: logs.logger,
      readMaxBytes: 2048,
      authenticate: createAuthenticate({
        verifier,
        publicProcedures: ["meridian.user.v1.UserService/CreateUser"],
      }),
      users: {
        getUser(_req, context) {
          handled++;
          principals.push(principalOf(context));
          return {};
        },
        createUser(req) {
          handled++;
          return { user: { email: req.email } };
        },
        async importUsers(requests) {
          handled++;
          let count = 0;
          for await (const _ of requests) count++;
          return { createdCount: count };
        },
      },
    });
  });
  afterAll(() => server?.stop());
  beforeEach(() => {
    principals.length = 0;
    logs.records.length = 0;
  });

  const userToken = async (subject: string, roles: ("customer" | "admin")[] = ["customer"]) =>
    (await users.sign({ subject, roles, ttlSeconds: 600 })).token;
  const rpcLines = () => logs.records.filter((r) => r.msg === "rpc" && r.rpc === getUserRpc);

  describe.each(protocols)("over %s", (protocol) => {
    const client = (token?: string) => createTestClient(UserService, server.url, protocol, token);

    it("refuses a call without a token, saying how to send one", async () => {
      const before = handled;
      const error = await callError(client().getUser({ id: "u1" }));
      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.rawMessage).toContain('"authorization: Bearer <token>"');
      expect(handled).toBe(before);
    });

    it.each([
      ["Basic dXNlcjpwYXNz", "a Basic credential"],
      ["Bearer", "Bearer without a token"],
      ["Bearer a b", "two tokens"],
      ["Token abc.def.ghi", "another scheme"],
    ])('refuses "authorization: %s" (%s)', async (authorization) => {
      const before = handled;
      const error = await callError(client().getUser({ id: "u1" }, { headers: { authorization } }));
      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.rawMessage).toBe('the authorization header must be "Bearer <token>"');
      expect(handled).toBe(before);
    });

    it("refuses a bad token with the verifier's reason", async () => {
      const expired = (await users.sign({ subject: "u1", ttlSeconds: -60 })).token;
      const error = await callError(client(expired).getUser({ id: "u1" }));
      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.rawMessage).toBe("the token has expired; authenticate again");
    });

    it("lets a valid user token in and hands the handler its principal", async () => {
      await client(await userToken("u1")).getUser({ id: "u1" });
      expect(principals).toEqual([{ kind: "user", userId: "u1", roles: ["customer"] }]);
    });

    it("accepts the scheme in any case and extra spaces before the token", async () => {
      const token = await userToken("u2");
      await client().getUser({ id: "u2" }, { headers: { authorization: `bearer   ${token}` } });
      expect(principals).toEqual([{ kind: "user", userId: "u2", roles: ["customer"] }]);
    });

    it("lets a service's own token in as that service", async () => {
      const { token } = await orders.sign({ subject: "order-service", ttlSeconds: 60 });
      await client(token).getUser({ id: "u1" });
      expect(principals).toEqual([{ kind: "service", service: "order-service" }]);
    });

    it("serves a public procedure without a token, and ignores a bad one there", async () => {
      const res = await client().createUser({ email: "a@example.com" });
      expect(res.user?.email).toBe("a@example.com");
      const withGarbage = await client("garbage").createUser({ email: "b@example.com" });
      expect(withGarbage.user?.email).toBe("b@example.com");
    });

    it("serves Health to anyone", async () => {
      const health = createTestClient(Health, server.url, protocol);
      expect((await health.check({ service: "" })).status).toBe(1);
    });

    it("writes one rpc log line for a refused call", async () => {
      await callError(client().getUser({ id: "u1" }));
      const lines = rpcLines();
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        level: 30,
        rpc: getUserRpc,
        code: "UNAUTHENTICATED",
        error: expect.stringContaining("authorization: Bearer"),
      });
      expect(lines[0]?.peer).toMatch(/^127\.0\.0\.1:\d+$/);
    });

    it("writes one rpc log line, with code OK, for an admitted call", async () => {
      await client(await userToken("u1")).getUser({ id: "u1" });
      const lines = rpcLines();
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ code: "OK" });
    });

    it("refuses an unauthenticated call before reading its body", async () => {
      // The message is over readMaxBytes: reading it would fail differently.
      const big = { id: "x".repeat(10_000) };
      const refused = await callError(client().getUser(big));
      expect(refused.code).toBe(Code.Unauthenticated);
      const admitted = await callError(client(await userToken("u1")).getUser(big));
      expect(admitted.code).toBe(Code.ResourceExhausted);
    });
  });

  it("refuses a client stream without reading it, even one the client never finishes", async () => {
    const before = handled;
    const finish = signal();
    let sent = 0;
    async function* rows() {
      for (;;) {
        sent++;
        yield { email: `row${sent}@example.com` };
        if (sent >= 3) {
          await finish.promise;
          return;
        }
      }
    }
    try {
      const client = createTestClient(UserService, server.url, "grpc");
      const error = await within(callError(client.importUsers(rows())), 3_000, "call refused");
      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.rawMessage).toContain("authorization: Bearer");
      expect(handled).toBe(before);
      const lines = logs.records.filter((r) => r.msg === "rpc");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        rpc: "meridian.user.v1.UserService/ImportUsers",
        code: "UNAUTHENTICATED",
      });
    } finally {
      finish.resolve();
    }
  });

  it("admits an authenticated client stream", async () => {
    const client = createTestClient(UserService, server.url, "grpc", await userToken("u1"));
    async function* rows() {
      yield { email: "a@example.com" };
      yield { email: "b@example.com" };
    }
    expect((await client.importUsers(rows())).createdCount).toBe(2);
  });
});

describe("authentication when the issuer's keys cannot be fetched", () => {
  let server: TestServer;
  let logs: CapturedLogs;
  let signer: TokenSigner;
  beforeAll(async () => {
    logs = captureLogs();
    const dead = http.createServer();
    await new Promise<void>((resolve) => dead.listen(0, "127.0.0.1", resolve));
    const deadUrl = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => dead.close(() => resolve()));
    signer = new TokenSigner("user-service", await newKey());
    server = await startTestServer({
      logger: logs.logger,
      authenticate: createAuthenticate({
        verifier: new TokenVerifier({
          issuers: [
            {
              issuer: "user-service",
              keys: new URL(jwksPath, deadUrl),
              issuesUserTokens: true,
            },
          ],
        }),
      }),
      users: { getUser: () => ({}) },
    });
  });
  afterAll(() => server?.stop());

  it("answers UNAVAILABLE (retry later), not UNAUTHENTICATED, and logs it as a server fault", async () => {
    const { token } = await signer.sign({ subject: "u1", ttlSeconds: 60 });
    const error = await callError(
      createTestClient(UserService, server.url, "grpc", token).getUser({ id: "u1" }),
    );
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toBe(
      'could not fetch the public keys of token issuer "user-service"; retry later',
    );
    const lines = logs.records.filter((r) => r.msg === "rpc");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, code: "UNAVAILABLE", rpc: getUserRpc });
  });
});

describe("the JWKS route", () => {
  let keys: SigningKey[];
  let server: TestServer;
  let bare: TestServer;
  let withFallback: TestServer;
  beforeAll(async () => {
    keys = [await newKey(), await newKey()];
    const verifier = new TokenVerifier({
      issuers: [{ issuer: "user-service", keys, issuesUserTokens: true }],
    });
    server = await startTestServer({
      publishedKeys: keys,
      authenticate: createAuthenticate({ verifier }),
      users: { getUser: () => ({}) },
    });
    bare = await startTestServer({ users: { getUser: () => ({}) } });
    withFallback = await startTestServer({
      publishedKeys: keys,
      fallback: (_req, res) => {
        res.writeHead(418, { "content-type": "text/plain" });
        res.end("fallback\n");
      },
    });
  });
  afterAll(async () => {
    await server?.stop();
    await bare?.stop();
    await withFallback?.stop();
  });

  it("serves the public keys, without a token, as application/jwk-set+json", async () => {
    const res = await fetch(`${server.url}${jwksPath}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/jwk-set+json");
    expect(res.headers.get("cache-control")).toBe("public, max-age=300");
    const body = await res.text();
    expect(res.headers.get("content-length")).toBe(String(Buffer.byteLength(body)));
    const document = JSON.parse(body) as { keys: Record<string, unknown>[] };
    expect(document.keys).toEqual(keys.map((k) => k.publicJwk));
    for (const key of document.keys) {
      expect(key).not.toHaveProperty("d");
      expect(key).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig" });
    }
  });

  it("is what a remote verifier needs to check the service's tokens", async () => {
    const remote = new TokenVerifier({
      issuers: [
        { issuer: "user-service", keys: new URL(jwksPath, server.url), issuesUserTokens: true },
      ],
    });
    for (const key of keys) {
      const { token } = await new TokenSigner("user-service", key).sign({
        subject: "u1",
        roles: ["admin"],
        ttlSeconds: 60,
      });
      expect(await remote.verify(token)).toEqual({ kind: "user", userId: "u1", roles: ["admin"] });
    }
  });

  it("answers HEAD with the headers only", async () => {
    const res = await fetch(`${server.url}${jwksPath}`, { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/jwk-set+json");
    expect(await res.text()).toBe("");
  });

  it("answers 404 to other paths and methods", async () => {
    for (const [url, method] of [
      [`${server.url}/`, "GET"],
      [`${server.url}/.well-known/other.json`, "GET"],
      [`${server.url}${jwksPath}/`, "GET"],
      [`${server.url}${jwksPath}`, "POST"],
    ] as const) {
      const res = await fetch(url, { method });
      expect(res.status, `${method} ${url}`).toBe(404);
      await res.arrayBuffer();
    }
  });

  it("is not served by a server that publishes no keys", async () => {
    const res = await fetch(`${bare.url}${jwksPath}`);
    expect(res.status).toBe(404);
    await res.arrayBuffer();
  });

  it("hands other requests to the server's own fallback", async () => {
    const jwks = await fetch(`${withFallback.url}${jwksPath}`);
    expect(jwks.status).toBe(200);
    await jwks.arrayBuffer();
    const other = await fetch(`${withFallback.url}/metrics`);
    expect(other.status).toBe(418);
    expect(await other.text()).toBe("fallback\n");
  });

  it("still serves RPCs on the same port", async () => {
    const { token } = await new TokenSigner("user-service", keys[0] as SigningKey).sign({
      subject: "u1",
      ttlSeconds: 60,
    });
    for (const protocol of protocols) {
      await createTestClient(UserService, server.url, protocol, token).getUser({ id: "u1" });
    }
  });
});

describe("authorization helpers", () => {
  const self: Principal = { kind: "user", userId: "u1", roles: ["customer"] };
  const other: Principal = { kind: "user", userId: "u2", roles: ["customer"] };
  const noRoles: Principal = { kind: "user", userId: "u1", roles: [] };
  const admin: Principal = { kind: "user", userId: "a1", roles: ["admin"] };
  const adminCustomer: Principal = { kind: "user", userId: "a2", roles: ["customer", "admin"] };
  const orderService: Principal = { kind: "service", service: "order-service" };
  const otherService: Principal = { kind: "service", service: "admin" };

  /** What `fn` gives, or the class and message of what it throws. */
  function outcome(fn: () => unknown): unknown {
    try {
      return { ok: fn() };
    } catch (error) {
      return { error: (error as Error).name, message: (error as Error).message };
    }
  }
  const denied = (message: string) => ({ error: "PermissionDeniedError", message });

  it("principalOf gives the caller, and refuses a call without one", () => {
    expect(principalOf(contextOf(self))).toEqual(self);
    expect(() => principalOf(contextOf(undefined))).toThrow(UnauthenticatedError);
  });

  it("isAdmin: users with the admin role only", () => {
    expect(
      [self, other, noRoles, admin, adminCustomer, orderService, otherService].map(isAdmin),
    ).toEqual([false, false, false, true, true, false, false]);
  });

  it("requireSelfOrAdmin", () => {
    const check = (p: Principal) =>
      outcome(() => requireSelfOrAdmin(contextOf(p), "u1", "read user u1"));
    expect(check(self)).toEqual({ ok: self });
    expect(check(noRoles)).toEqual({ ok: noRoles });
    expect(check(other)).toEqual(denied("user u2 may not read user u1"));
    expect(check(admin)).toEqual({ ok: admin });
    expect(check(adminCustomer)).toEqual({ ok: adminCustomer });
    expect(check(orderService)).toEqual(denied("service order-service may not read user u1"));
    // A service named like a user is still not that user.
    expect(
      outcome(() =>
        requireSelfOrAdmin(contextOf({ kind: "service", service: "u1" }), "u1", "read user u1"),
      ),
    ).toEqual(denied("service u1 may not read user u1"));
    expect(() => requireSelfOrAdmin(contextOf(undefined), "u1", "read")).toThrow(
      UnauthenticatedError,
    );
  });

  it("requireAdmin", () => {
    const check = (p: Principal) => outcome(() => requireAdmin(contextOf(p), "list users"));
    expect(check(self)).toEqual(denied("user u1 may not list users; only an admin may"));
    expect(check(admin)).toEqual({ ok: admin });
    expect(check(adminCustomer)).toEqual({ ok: adminCustomer });
    expect(check(orderService)).toEqual(
      denied("service order-service may not list users; only an admin may"),
    );
    expect(check(otherService)).toEqual(
      denied("service admin may not list users; only an admin may"),
    );
    expect(() => requireAdmin(contextOf(undefined), "list users")).toThrow(UnauthenticatedError);
  });

  it("requireServiceOrAdmin", () => {
    const check = (p: Principal) =>
      outcome(() => requireServiceOrAdmin(contextOf(p), ["order-service"], "charge"));
    expect(check(orderService)).toEqual({ ok: orderService });
    expect(check(admin)).toEqual({ ok: admin });
    expect(check(otherService)).toEqual(
      denied("service admin may not charge; only order-service or an admin may"),
    );
    expect(check(self)).toEqual(
      denied("user u1 may not charge; only order-service or an admin may"),
    );
    // A user whose id is a service's name is not that service.
    expect(
      outcome(() =>
        requireServiceOrAdmin(
          contextOf({ kind: "user", userId: "order-service", roles: ["customer"] }),
          ["order-service"],
          "charge",
        ),
      ),
    ).toEqual(denied("user order-service may not charge; only order-service or an admin may"));
    expect(
      outcome(() =>
        requireServiceOrAdmin(contextOf(otherService), ["order-service", "admin"], "refund"),
      ),
    ).toEqual({ ok: otherService });
    expect(() => requireServiceOrAdmin(contextOf(undefined), ["order-service"], "charge")).toThrow(
      UnauthenticatedError,
    );
  });

  it("scopeToCaller", () => {
    const scope = (p: Principal, requested: string) =>
      outcome(() => scopeToCaller(contextOf(p), requested, "list the orders"));
    expect(scope(self, "")).toEqual({ ok: "u1" });
    expect(scope(self, "u1")).toEqual({ ok: "u1" });
    expect(scope(self, "u2")).toEqual(denied("user u1 may not list the orders of user u2"));
    expect(scope(admin, "")).toEqual({ ok: "" });
    expect(scope(admin, "u2")).toEqual({ ok: "u2" });
    expect(scope(orderService, "")).toEqual(
      denied("service order-service may not list the orders of every user"),
    );
    expect(scope(orderService, "u1")).toEqual(
      denied("service order-service may not list the orders of user u1"),
    );
    expect(() => scopeToCaller(contextOf(undefined), "", "list")).toThrow(UnauthenticatedError);
  });

  it("throws PermissionDeniedError, which maps to PERMISSION_DENIED", () => {
    expect(() => requireAdmin(contextOf(self), "x")).toThrow(PermissionDeniedError);
  });
});
