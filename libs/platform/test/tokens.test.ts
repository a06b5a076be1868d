/**
 * Signing keys, token signing and verification, the verifier's cache, and
 * the service identity token.
 */
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { startTestIssuer, type TestIssuer } from "@meridian/testkit";
import { decodeJwt, decodeProtectedHeader, type JWTPayload, SignJWT } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { UnauthenticatedError } from "../src/errors.js";
import {
  generateSigningJwk,
  importSigningKey,
  jwksDocument,
  loadOrCreateDevelopmentKey,
  type Principal,
  ServiceIdentity,
  type SigningKey,
  TokenSigner,
  TokenVerifier,
  tokenAudience,
} from "../src/tokens.js";

const newKey = async (kid?: string): Promise<SigningKey> => {
  const jwk = await generateSigningJwk();
  return importSigningKey(JSON.stringify(kid === undefined ? jwk : { ...jwk, kid }));
};

/** Signs any claims with `key`, for tokens TokenSigner would never make. */
function signRaw(key: SigningKey, claims: JWTPayload, header: { kid?: string } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ aud: tokenAudience, iat: now, exp: now + 600, ...claims })
    .setProtectedHeader({ alg: "EdDSA", kid: header.kid ?? key.kid })
    .sign(key.key);
}

/** The UnauthenticatedError (or other error) a verification ends with. */
async function refusal(verify: () => Principal | Promise<Principal>): Promise<Error> {
  try {
    await verify();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected the token to be refused");
}

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("signing keys", () => {
  it("generates an Ed25519 private JWK with a kid", async () => {
    const jwk = await generateSigningJwk();
    expect(jwk).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA" });
    expect(typeof jwk.d).toBe("string");
    expect(typeof jwk.x).toBe("string");
    expect(jwk.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await generateSigningJwk()).kid).not.toBe(jwk.kid);
  });

  it("imports a JWK, keeping its kid, and publishes only the public half", async () => {
    const jwk = await generateSigningJwk();
    const key = await importSigningKey(JSON.stringify(jwk));
    expect(key.kid).toBe(jwk.kid);
    expect(key.publicJwk).toEqual({
      kty: "OKP",
      crv: "Ed25519",
      x: jwk.x,
      kid: jwk.kid,
      alg: "EdDSA",
      use: "sig",
    });
    expect(jwksDocument([key])).toEqual({ keys: [key.publicJwk] });
    expect(JSON.stringify(jwksDocument([key]))).not.toContain(jwk.d as string);
  });

  it("derives the kid from the key's thumbprint when the JWK has none", async () => {
    const { kid, alg: _alg, ...bare } = await generateSigningJwk();
    const key = await importSigningKey(JSON.stringify(bare));
    expect(key.kid).toBe(kid);
  });

  it("refuses what is not an Ed25519 private key as a JWK", async () => {
    await expect(importSigningKey("{not json")).rejects.toThrow(
      "is not JSON; expected an Ed25519 private key as a JWK",
    );
    const { d: _d, ...publicOnly } = await generateSigningJwk();
    for (const jwk of [publicOnly, { kty: "RSA", n: "x", e: "AQAB", d: "x" }, {}]) {
      await expect(importSigningKey(JSON.stringify(jwk))).rejects.toThrow(
        "must be an Ed25519 private key as a JWK",
      );
    }
  });

  describe("loadOrCreateDevelopmentKey", () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), "meridian-platform-keys-"));
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it("creates a key on first run, private to the owner, and reuses it after", async () => {
      const dataDir = path.join(dir, "fresh", "nested");
      const first = await loadOrCreateDevelopmentKey(dataDir);
      const file = path.join(dataDir, "dev-signing-key.jwk.json");
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      const second = await loadOrCreateDevelopmentKey(dataDir);
      expect(second.kid).toBe(first.kid);
      expect(second.publicJwk).toEqual(first.publicJwk);
      // Tokens signed before a restart verify after it.
      const { token } = await new TokenSigner("svc", first).sign({
        subject: "svc",
        ttlSeconds: 60,
      });
      const verifier = new TokenVerifier({
        issuers: [{ issuer: "svc", keys: [second], issuesUserTokens: false }],
      });
      expect(await verifier.verify(token)).toEqual({ kind: "service", service: "svc" });
    });

    it("refuses a corrupt key file instead of replacing it", async () => {
      const dataDir = path.join(dir, "corrupt");
      await loadOrCreateDevelopmentKey(dataDir);
      await writeFile(path.join(dataDir, "dev-signing-key.jwk.json"), "garbage");
      await expect(loadOrCreateDevelopmentKey(dataDir)).rejects.toThrow("is not JSON");
    });
  });
});

describe("TokenSigner", () => {
  it("signs EdDSA JWTs for the meridian audience with iss, sub, roles, iat, exp and jti", async () => {
    const key = await newKey();
    const before = Math.floor(Date.now() / 1000);
    const { token, expiresAt } = await new TokenSigner("user-service", key).sign({
      subject: "u1",
      roles: ["customer"],
      ttlSeconds: 600,
    });
    expect(decodeProtectedHeader(token)).toEqual({ alg: "EdDSA", kid: key.kid, typ: "JWT" });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({
      iss: "user-service",
      sub: "u1",
      aud: "meridian",
      roles: ["customer"],
    });
    expect(claims.iat).toBeGreaterThanOrEqual(before);
    expect(claims.exp).toBe((claims.iat as number) + 600);
    expect(expiresAt.getTime()).toBe((claims.exp as number) * 1000);
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("leaves roles out of a token without them", async () => {
    const { token } = await new TokenSigner("svc", await newKey()).sign({
      subject: "svc",
      ttlSeconds: 60,
    });
    expect(decodeJwt(token)).not.toHaveProperty("roles");
  });
});

describe("TokenVerifier", () => {
  let userKey: SigningKey;
  let orderKey: SigningKey;
  let users: TokenSigner;
  let orders: TokenSigner;
  let verifier: TokenVerifier;
  beforeAll(async () => {
    userKey = await newKey();
    orderKey = await newKey();
    users = new TokenSigner("user-service", userKey);
    orders = new TokenSigner("order-service", orderKey);
    verifier = new TokenVerifier({
      issuers: [
        { issuer: "user-service", keys: [userKey], issuesUserTokens: true },
        { issuer: "order-service", keys: [orderKey], issuesUserTokens: false },
      ],
    });
  });
  const userToken = async (subject: string, roles: ("customer" | "admin")[] = ["customer"]) =>
    (await users.sign({ subject, roles, ttlSeconds: 600 })).token;

  it("gives the user, with their roles, for a token of the user issuer", async () => {
    expect(await verifier.verify(await userToken("u1"))).toEqual({
      kind: "user",
      userId: "u1",
      roles: ["customer"],
    });
    expect(await verifier.verify(await userToken("a1", ["admin", "customer"]))).toEqual({
      kind: "user",
      userId: "a1",
      roles: ["customer", "admin"],
    });
  });

  it("drops roles it does not know, and reads a roles claim that is not a list as none", async () => {
    const unknown = await signRaw(userKey, {
      iss: "user-service",
      sub: "u2",
      roles: ["customer", "superuser", "ADMIN", 7],
    });
    expect(await verifier.verify(unknown)).toEqual({
      kind: "user",
      userId: "u2",
      roles: ["customer"],
    });
    const notAList = await signRaw(userKey, { iss: "user-service", sub: "u3", roles: "admin" });
    expect(await verifier.verify(notAList)).toEqual({ kind: "user", userId: "u3", roles: [] });
  });

  it("gives the service for a service's token about itself, ignoring any roles in it", async () => {
    const { token } = await orders.sign({ subject: "order-service", ttlSeconds: 60 });
    expect(await verifier.verify(token)).toEqual({ kind: "service", service: "order-service" });
    const claimingAdmin = await signRaw(orderKey, {
      iss: "order-service",
      sub: "order-service",
      roles: ["admin"],
    });
    expect(await verifier.verify(claimingAdmin)).toEqual({
      kind: "service",
      service: "order-service",
    });
  });

  it("refuses a service's token that speaks for someone else", async () => {
    const { token } = await orders.sign({ subject: "u1", roles: ["admin"], ttlSeconds: 60 });
    const error = await refusal(() => verifier.verify(token));
    expect(error).toBeInstanceOf(UnauthenticatedError);
    expect(error.message).toBe('issuer "order-service" may only issue tokens for itself');
  });

  it("refuses a token of an issuer it does not trust", async () => {
    const { token } = await new TokenSigner("mallory", await newKey()).sign({
      subject: "mallory",
      ttlSeconds: 60,
    });
    const error = await refusal(() => verifier.verify(token));
    expect(error).toBeInstanceOf(UnauthenticatedError);
    expect(error.message).toBe('tokens from issuer "mallory" are not trusted');
  });

  it("refuses a token signed with another key under the issuer's kid", async () => {
    const forger = new TokenSigner("user-service", await newKey(userKey.kid));
    const { token } = await forger.sign({ subject: "u1", roles: ["admin"], ttlSeconds: 60 });
    expect(decodeProtectedHeader(token).kid).toBe(userKey.kid);
    const error = await refusal(() => verifier.verify(token));
    expect(error).toBeInstanceOf(UnauthenticatedError);
    expect(error.message).toBe("the token's signature is not valid");
  });

  it("refuses a token signed with a key the issuer does not publish", async () => {
    const stranger = new TokenSigner("user-service", await newKey());
    const { token } = await stranger.sign({ subject: "u1", roles: ["admin"], ttlSeconds: 60 });
    const error = await refusal(() => verifier.verify(token));
    expect(error).toBeInstanceOf(UnauthenticatedError);
    expect(error.message).toBe("the token was signed with a key its issuer does not publish");
  });

  it("refuses a token signed by another trusted issuer's key", async () => {
    const token = await signRaw(orderKey, { iss: "user-service", sub: "u1", roles: ["admin"] });
    const error = await refusal(() => verifier.verify(token));
    expect(error).toBeInstanceOf(UnauthenticatedError);
    expect(error.message).toBe("the token was signed with a key its issuer does not publish");
  });

  it("refuses an expired token, saying to authenticate again", async () => {
    const { token } = await users.sign({ subject: "u1", ttlSeconds: -60 });
    const error = await refusal(() => verifier.verify(token));
    expect(error).toBeInstanceOf(UnauthenticatedError);
    expect(error.message).toBe("the token has expired; authenticate again");
  });

  it("accepts a token expired within the clock tolerance", async () => {
    const { token } = await users.sign({ subject: "u1", ttlSeconds: -2 });
    expect(await verifier.verify(token)).toMatchObject({ kind: "user", userId: "u1" });
  });

  it("refuses a token for another audience, or with none", async () => {
    for (const aud of ["payments-partner", undefined]) {
      const token = await signRaw(userKey, { iss: "user-service", sub: "u1", aud });
      const error = await refusal(() => verifier.verify(token));
      expect(error).toBeInstanceOf(UnauthenticatedError);
      expect(error.message).toMatch(/^the token's "aud" claim is not valid \(.+\)$/);
    }
  });

  it("refuses a token without a subject or an expiry", async () => {
    const noSubject = await signRaw(userKey, { iss: "user-service" });
    expect((await refusal(() => verifier.verify(noSubject))).message).toMatch(
      /^the token's "sub" claim is not valid/,
    );
    const noExpiry = await signRaw(userKey, { iss: "user-service", sub: "u1", exp: undefined });
    expect((await refusal(() => verifier.verify(noExpiry))).message).toMatch(
      /^the token's "exp" claim is not valid/,
    );
  });

  it("refuses what is not a JWT", async () => {
    const payload = (claims: object) => Buffer.from(JSON.stringify(claims)).toString("base64url");
    const cases: [string, string | RegExp][] = [
      ["", "the bearer token is not a JWT"],
      ["opaque-session-id", "the bearer token is not a JWT"],
      ["a.b", "the bearer token is not a JWT"],
      ["a.b.c.d", "the bearer token is not a JWT"],
      ["a.%%%.c", "the bearer token is not a JWT with an issuer"],
      [`a.${payload({ sub: "u1" })}.c`, "the bearer token is not a JWT with an issuer"],
      [`a.${payload({ iss: 42 })}.c`, "the bearer token is not a JWT with an issuer"],
      [`a.${payload({ iss: "user-service", sub: "u1" })}.c`, /^the token is not valid \(ERR_/],
      [
        // alg "none": unsigned, and never accepted.
        `${payload({ alg: "none" })}.${payload({ iss: "user-service", sub: "u1", aud: "meridian", exp: 9e9 })}.`,
        /^the token is not valid \(ERR_/,
      ],
    ];
    for (const [token, message] of cases) {
      const error = await refusal(() => verifier.verify(token));
      expect(error, token).toBeInstanceOf(UnauthenticatedError);
      if (typeof message === "string") expect(error.message, token).toBe(message);
      else expect(error.message, token).toMatch(message);
    }
  });

  it("keeps an untrusted issuer's name short in the message", async () => {
    const token = await signRaw(userKey, { iss: "x".repeat(500), sub: "u1" });
    const error = await refusal(() => verifier.verify(token));
    expect(error.message).toBe(`tokens from issuer "${"x".repeat(60)}" are not trusted`);
  });

  describe("cache", () => {
    it("answers a token it has verified without a Promise", async () => {
      const cached = new TokenVerifier({
        issuers: [{ issuer: "user-service", keys: [userKey], issuesUserTokens: true }],
      });
      const token = await userToken("u1");
      const first = cached.verify(token);
      expect(first).toBeInstanceOf(Promise);
      const principal = await first;
      const second = cached.verify(token);
      expect(second).not.toBeInstanceOf(Promise);
      expect(second).toEqual(principal);
    });

    it("never caches a refusal", async () => {
      const cached = new TokenVerifier({
        issuers: [{ issuer: "order-service", keys: [orderKey], issuesUserTokens: false }],
      });
      const { token } = await orders.sign({ subject: "u1", ttlSeconds: 60 });
      await refusal(() => cached.verify(token));
      const again = cached.verify(token);
      expect(again).toBeInstanceOf(Promise);
      await expect(again).rejects.toBeInstanceOf(UnauthenticatedError);
    });

    it("verifies a cached token again once it has expired, and refuses it", async () => {
      vi.useFakeTimers({ toFake: ["Date"] });
      const cached = new TokenVerifier({
        issuers: [{ issuer: "user-service", keys: [userKey], issuesUserTokens: true }],
      });
      const { token } = await users.sign({ subject: "u1", ttlSeconds: 60 });
      await cached.verify(token);
      vi.setSystemTime(Date.now() + 30_000);
      expect(cached.verify(token)).not.toBeInstanceOf(Promise);
      // 10 s past its expiry: beyond the 5 s clock tolerance.
      vi.setSystemTime(Date.now() + 40_000);
      const expired = cached.verify(token);
      expect(expired).toBeInstanceOf(Promise);
      const error = await refusal(() => expired);
      expect(error).toBeInstanceOf(UnauthenticatedError);
      expect(error.message).toBe("the token has expired; authenticate again");
      vi.setSystemTime(Date.now() + 10_000);
      const again = cached.verify(token);
      expect(again).toBeInstanceOf(Promise);
      await expect(again).rejects.toBeInstanceOf(UnauthenticatedError);
    });

    it("forgets the oldest token when full", async () => {
      const small = new TokenVerifier({
        issuers: [{ issuer: "user-service", keys: [userKey], issuesUserTokens: true }],
        cacheSize: 2,
      });
      const [t1, t2, t3] = await Promise.all([userToken("u1"), userToken("u2"), userToken("u3")]);
      for (const token of [t1, t2, t3]) await small.verify(token as string);
      expect(small.verify(t3 as string)).not.toBeInstanceOf(Promise);
      expect(small.verify(t2 as string)).not.toBeInstanceOf(Promise);
      const forgotten = small.verify(t1 as string);
      expect(forgotten).toBeInstanceOf(Promise);
      expect(await forgotten).toMatchObject({ userId: "u1" });
    });
  });

  describe("remote key sets", () => {
    let issuer: TestIssuer;
    let deadUrl: string;
    let unhealthy: http.Server;
    let unhealthyUrl: string;
    beforeAll(async () => {
      issuer = await startTestIssuer("user-service");
      const dead = http.createServer();
      await new Promise<void>((resolve) => dead.listen(0, "127.0.0.1", resolve));
      deadUrl = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
      await new Promise<void>((resolve) => dead.close(() => resolve()));
      unhealthy = http.createServer((_req, res) => {
        res.writeHead(503, { "content-type": "text/plain" }).end("overloaded\n");
      });
      await new Promise<void>((resolve) => unhealthy.listen(0, "127.0.0.1", resolve));
      unhealthyUrl = `http://127.0.0.1:${(unhealthy.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await issuer?.close();
      unhealthy?.closeAllConnections();
      await new Promise<void>((resolve) =>
        unhealthy ? unhealthy.close(() => resolve()) : resolve(),
      );
    });

    const trusting = (url: string) =>
      new TokenVerifier({
        issuers: [
          {
            issuer: "user-service",
            keys: new URL("/.well-known/jwks.json", url),
            issuesUserTokens: true,
          },
        ],
      });

    it("verifies tokens against an issuer's published JWKS", async () => {
      const remote = trusting(issuer.url);
      expect(await remote.verify(await issuer.userToken("u9", ["admin"]))).toEqual({
        kind: "user",
        userId: "u9",
        roles: ["admin"],
      });
      const forged = await new TokenSigner("user-service", await newKey(issuer.key.kid)).sign({
        subject: "u9",
        ttlSeconds: 60,
      });
      const error = await refusal(() => remote.verify(forged.token));
      expect(error).toBeInstanceOf(UnauthenticatedError);
    });

    it("gives UNAVAILABLE, not UNAUTHENTICATED, when the issuer's keys cannot be fetched", async () => {
      const token = await issuer.userToken("u9");
      const error = await refusal(() => trusting(deadUrl).verify(token));
      expect(error).not.toBeInstanceOf(UnauthenticatedError);
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.Unavailable);
      expect((error as ConnectError).rawMessage).toBe(
        'could not fetch the public keys of token issuer "user-service"; retry later',
      );
    });

    // jose reports a non-200 JWKS response as a bare JOSEError: that is the
    // issuer failing, not the token, so the client should retry, not re-login.
    it("gives UNAVAILABLE when the issuer answers its JWKS with an error status", async () => {
      const token = await issuer.userToken("u9");
      const error = await refusal(() => trusting(unhealthyUrl).verify(token));
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.Unavailable);
    });
  });
});

describe("ServiceIdentity", () => {
  let signer: TokenSigner;
  beforeAll(async () => {
    signer = new TokenSigner("order-service", await newKey());
  });

  it("mints a token for itself: iss = sub = the service, audience meridian", async () => {
    const identity = new ServiceIdentity(signer, 300);
    expect(identity.service).toBe("order-service");
    const token = await identity.token();
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ iss: "order-service", sub: "order-service", aud: "meridian" });
    expect((claims.exp as number) - (claims.iat as number)).toBe(300);
  });

  it("reuses its token until close to expiry, then mints a new one", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const sign = vi.spyOn(signer, "sign");
    const identity = new ServiceIdentity(signer, 100);
    const first = await identity.token();
    expect(identity.token()).toBe(first);
    vi.setSystemTime(Date.now() + 79_000);
    expect(identity.token()).toBe(first);
    expect(sign).toHaveBeenCalledTimes(1);
    vi.setSystemTime(Date.now() + 2_000);
    const renewed = identity.token();
    expect(renewed).toBeInstanceOf(Promise);
    const second = await renewed;
    expect(second).not.toBe(first);
    expect(identity.token()).toBe(second);
    expect(sign).toHaveBeenCalledTimes(2);
  });

  it("never signs twice at once", async () => {
    const sign = vi.spyOn(signer, "sign");
    const identity = new ServiceIdentity(signer);
    const pending = [identity.token(), identity.token(), identity.token()];
    expect(pending[1]).toBe(pending[0]);
    expect(pending[2]).toBe(pending[0]);
    const tokens = await Promise.all(pending);
    expect(new Set(tokens).size).toBe(1);
    expect(sign).toHaveBeenCalledTimes(1);
  });

  it("tries again after a failed signing", async () => {
    const sign = vi.spyOn(signer, "sign").mockRejectedValueOnce(new Error("key unavailable"));
    const identity = new ServiceIdentity(signer);
    await expect(identity.token()).rejects.toThrow("key unavailable");
    expect(typeof (await identity.token())).toBe("string");
    expect(sign).toHaveBeenCalledTimes(2);
  });
});
