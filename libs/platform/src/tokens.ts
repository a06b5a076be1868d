/**
 * Signed access tokens: JWTs signed with Ed25519 (alg EdDSA), each service
 * publishing its public keys as a JWKS document on its own port.
 *
 * Two kinds of token travel between Meridian's services:
 * - user tokens, issued by user-service (Authenticate) for a person, carrying
 *   the user's id and roles;
 * - service tokens, which a service mints for itself (iss = sub = its name)
 *   to call a neighbour where no user is involved.
 *
 * A verifier trusts a fixed set of issuers, each with its own key set. Only
 * the user issuer may speak for users; any other trusted issuer may only
 * speak for itself. Verification is a signature check (~170 µs on Node 20),
 * so verified tokens are cached until they expire: a client that sends the
 * same token on every call pays for it once.
 */
import { randomUUID } from "node:crypto";
import { link, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  createRemoteJWKSet,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JSONWebKeySet,
  type JWK,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
  SignJWT,
} from "jose";
import { UnauthenticatedError } from "./errors.js";

export const tokenAlgorithm = "EdDSA";
/** Every Meridian token names this audience; tokens for anything else are refused. */
export const tokenAudience = "meridian";
/** Where every service serves its public keys. */
export const jwksPath = "/.well-known/jwks.json";

export type Role = "customer" | "admin";

type PrivateKey = Parameters<SignJWT["sign"]>[0];

/** Who is calling: a person (through a user token) or a service. */
export type Principal =
  | { kind: "user"; userId: string; roles: readonly Role[] }
  | { kind: "service"; service: string };

export interface SigningKey {
  /** The private key, for signing. */
  key: PrivateKey;
  kid: string;
  /** The public half, as published in the JWKS document. */
  publicJwk: JWK;
}

/** Generates an Ed25519 key pair and returns it as a private JWK (with kid), for storing. */
export async function generateSigningJwk(): Promise<JWK> {
  const { privateKey } = await generateKeyPair(tokenAlgorithm, {
    crv: "Ed25519",
    extractable: true,
  });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, alg: tokenAlgorithm, kid: await calculateJwkThumbprint(jwk) };
}

/**
 * Parses AUTH_SIGNING_KEY: an Ed25519 private key as a JWK (JSON). The kid is
 * the key's own unless it has none, then its RFC 7638 thumbprint.
 */
export async function importSigningKey(json: string): Promise<SigningKey> {
  let jwk: JWK;
  try {
    jwk = JSON.parse(json) as JWK;
  } catch {
    throw new Error("is not JSON; expected an Ed25519 private key as a JWK");
  }
  if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.d !== "string") {
    throw new Error(
      'must be an Ed25519 private key as a JWK ({"kty":"OKP","crv":"Ed25519","d":…})',
    );
  }
  const { d: _private, ...publicPart } = jwk;
  const kid = jwk.kid ?? (await calculateJwkThumbprint(publicPart));
  const key = (await importJWK({ ...jwk, alg: tokenAlgorithm }, tokenAlgorithm)) as PrivateKey;
  return {
    key,
    kid,
    publicJwk: {
      kty: publicPart.kty,
      crv: publicPart.crv,
      x: publicPart.x,
      kid,
      alg: tokenAlgorithm,
      use: "sig",
    },
  };
}

/**
 * The development fallback when no key is configured: a key generated on
 * first run and kept in the service's data directory, so tokens survive a
 * restart. Production sets AUTH_SIGNING_KEY instead (see service-config.ts).
 */
export async function loadOrCreateDevelopmentKey(dataDir: string): Promise<SigningKey> {
  return importSigningKey(
    await ensureSigningKeyFile(path.join(dataDir, "dev-signing-key.jwk.json")),
  );
}

/**
 * The private JWK kept in `file`, generated first when the file does not
 * exist (readable by its owner only, written whole or not at all), so a key
 * outlives restarts. Returns the file's text.
 */
export async function ensureSigningKeyFile(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  await mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, JSON.stringify(await generateSigningJwk()), { mode: 0o600 });
  try {
    // link, unlike rename, never replaces: of two processes racing, one key wins for both.
    await link(temporary, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  } finally {
    await rm(temporary, { force: true });
  }
  return readFile(file, "utf8");
}

/** The JWKS document a service publishes. */
export function jwksDocument(keys: readonly SigningKey[]): JSONWebKeySet {
  return { keys: keys.map((k) => k.publicJwk) };
}

export interface TokenClaims {
  subject: string;
  roles?: readonly Role[];
  ttlSeconds: number;
}

/** Signs tokens as `issuer` (a service name) with its key. */
export class TokenSigner {
  constructor(
    readonly issuer: string,
    private readonly signingKey: SigningKey,
  ) {}

  async sign({
    subject,
    roles,
    ttlSeconds,
  }: TokenClaims): Promise<{ token: string; expiresAt: Date }> {
    const issuedAt = Math.floor(Date.now() / 1000);
    const expiresAt = issuedAt + ttlSeconds;
    const token = await new SignJWT(roles ? { roles: [...roles] } : {})
      .setProtectedHeader({ alg: tokenAlgorithm, kid: this.signingKey.kid, typ: "JWT" })
      .setIssuer(this.issuer)
      .setAudience(tokenAudience)
      .setSubject(subject)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .setJti(randomUUID())
      .sign(this.signingKey.key);
    return { token, expiresAt: new Date(expiresAt * 1000) };
  }
}

/**
 * A service's own identity token, minted on demand and reused until it is
 * close to expiry, so calling a neighbour as the service costs no signing.
 */
export class ServiceIdentity {
  private current?: { token: string; refreshAt: number };
  private pending?: Promise<string>;

  constructor(
    private readonly signer: TokenSigner,
    private readonly ttlSeconds = 300,
  ) {}

  get service(): string {
    return this.signer.issuer;
  }

  token(): Promise<string> | string {
    if (this.current && Date.now() < this.current.refreshAt) return this.current.token;
    this.pending ??= this.signer
      .sign({ subject: this.signer.issuer, ttlSeconds: this.ttlSeconds })
      .then(({ token }) => {
        // Renew at 80% of the lifetime, well before a neighbour would refuse it.
        this.current = { token, refreshAt: Date.now() + this.ttlSeconds * 800 };
        return token;
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }
}

export interface TrustedIssuer {
  /** A service name, matched against the token's `iss`. */
  issuer: string;
  /** Its public keys: a JWKS URL (fetched and cached) or keys at hand. */
  keys: URL | readonly SigningKey[];
  /** Whether tokens of this issuer may name users (only user-service's may). */
  issuesUserTokens: boolean;
}

export interface TokenVerifierOptions {
  issuers: readonly TrustedIssuer[];
  /** Verified tokens remembered; the oldest is forgotten first. */
  cacheSize?: number;
  /** Allowed clock difference between services, in seconds. */
  clockToleranceSeconds?: number;
}

const roles: readonly Role[] = ["customer", "admin"];

export class TokenVerifier {
  private readonly keySets = new Map<
    string,
    { keys: JWTVerifyGetKey; users: boolean; remote: boolean }
  >();
  private readonly cache = new Map<string, { principal: Principal; expiresAtMs: number }>();
  private readonly cacheSize: number;
  private readonly clockTolerance: number;

  constructor(options: TokenVerifierOptions) {
    for (const trusted of options.issuers) {
      const keys =
        trusted.keys instanceof URL
          ? createRemoteJWKSet(trusted.keys, { cooldownDuration: 5_000, timeoutDuration: 2_000 })
          : createLocalJWKSet(jwksDocument(trusted.keys));
      this.keySets.set(trusted.issuer, {
        keys,
        users: trusted.issuesUserTokens,
        remote: trusted.keys instanceof URL,
      });
    }
    this.cacheSize = options.cacheSize ?? 10_000;
    this.clockTolerance = options.clockToleranceSeconds ?? 5;
  }

  /** The principal a token speaks for; UnauthenticatedError says why not. */
  verify(token: string): Principal | Promise<Principal> {
    const cached = this.cache.get(token);
    if (cached !== undefined) {
      if (Date.now() < cached.expiresAtMs) return cached.principal;
      this.cache.delete(token);
    }
    return this.verifySignature(token);
  }

  private async verifySignature(token: string): Promise<Principal> {
    const issuer = unverifiedIssuer(token);
    const trusted = this.keySets.get(issuer);
    if (trusted === undefined) {
      throw new UnauthenticatedError(`tokens from issuer "${issuer.slice(0, 60)}" are not trusted`);
    }
    let payload: Awaited<ReturnType<typeof jwtVerify>>["payload"];
    try {
      ({ payload } = await jwtVerify(token, trusted.keys, {
        algorithms: [tokenAlgorithm],
        issuer,
        audience: tokenAudience,
        requiredClaims: ["sub", "exp"],
        clockTolerance: this.clockTolerance,
      }));
    } catch (error) {
      if (
        error instanceof joseErrors.JWKSTimeout ||
        !(error instanceof joseErrors.JOSEError) ||
        // jose reports a JWKS answered with an error status (or not JSON) as a bare JOSEError.
        (trusted.remote && error.constructor === joseErrors.JOSEError)
      ) {
        // The issuer's keys could not be fetched: the token may be fine.
        throw new ConnectError(
          `could not fetch the public keys of token issuer "${issuer}"; retry later`,
          Code.Unavailable,
          undefined,
          undefined,
          error,
        );
      }
      throw new UnauthenticatedError(describeRejection(error));
    }
    const subject = payload.sub as string;
    let principal: Principal;
    if (subject === issuer) {
      // An issuer speaking for itself: a service identity, never a user.
      principal = { kind: "service", service: issuer };
    } else if (trusted.users) {
      const claimed = Array.isArray(payload.roles) ? payload.roles : [];
      principal = {
        kind: "user",
        // Services store ids lower-cased; compare like with like.
        userId: subject.toLowerCase(),
        roles: roles.filter((role) => claimed.includes(role)),
      };
    } else {
      throw new UnauthenticatedError(`issuer "${issuer}" may only issue tokens for itself`);
    }
    if (this.cache.size >= this.cacheSize) {
      this.cache.delete(this.cache.keys().next().value as string);
    }
    this.cache.set(token, { principal, expiresAtMs: (payload.exp as number) * 1000 });
    return principal;
  }
}

/** The `iss` claim, read before verification only to pick the issuer's keys. */
function unverifiedIssuer(token: string): string {
  const parts = token.split(".");
  if (parts.length !== 3) throw new UnauthenticatedError("the bearer token is not a JWT");
  try {
    const payload = JSON.parse(Buffer.from(parts[1] ?? "", "base64url").toString("utf8"));
    if (typeof payload?.iss === "string") return payload.iss;
  } catch {
    // Falls through to the error below.
  }
  throw new UnauthenticatedError("the bearer token is not a JWT with an issuer");
}

function describeRejection(error: joseErrors.JOSEError): string {
  if (error instanceof joseErrors.JWTExpired) return "the token has expired; authenticate again";
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) {
    return "the token's signature is not valid";
  }
  if (error instanceof joseErrors.JWKSNoMatchingKey) {
    return "the token was signed with a key its issuer does not publish";
  }
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    return `the token's "${error.claim}" claim is not valid (${error.reason})`;
  }
  return `the token is not valid (${error.code})`;
}
