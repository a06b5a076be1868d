/**
 * resolveSigningKey: the configured key, a development key kept in
 * DATA_DIR, or a configuration error an operator can act on.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { captureLogs } from "@meridian/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.js";
import { resolveSigningKey, serviceConfig, signingKeyConfig } from "../src/service-config.js";
import { generateSigningJwk, TokenSigner, TokenVerifier } from "../src/tokens.js";

describe("resolveSigningKey", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "meridian-platform-config-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("uses AUTH_SIGNING_KEY when set, in production as anywhere", async () => {
    const jwk = await generateSigningJwk();
    const { logger, records } = captureLogs();
    for (const NODE_ENV of ["production", "development"]) {
      const key = await resolveSigningKey(
        { AUTH_SIGNING_KEY: JSON.stringify(jwk), NODE_ENV, DATA_DIR: path.join(dir, "unused") },
        logger,
      );
      expect(key.kid).toBe(jwk.kid);
      expect(key.publicJwk.x).toBe(jwk.x);
    }
    expect(records).toEqual([]);
    await expect(readFile(path.join(dir, "unused", "dev-signing-key.jwk.json"))).rejects.toThrow(
      /ENOENT/,
    );
  });

  it("refuses to start in production without AUTH_SIGNING_KEY", async () => {
    const error = await resolveSigningKey(
      { NODE_ENV: "production", DATA_DIR: path.join(dir, "prod") },
      captureLogs().logger,
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toHaveLength(1);
    expect((error as ConfigError).problems[0]).toMatch(
      /^AUTH_SIGNING_KEY or AUTH_SIGNING_KEY_FILE is required when NODE_ENV=production/,
    );
    await expect(readFile(path.join(dir, "prod", "dev-signing-key.jwk.json"))).rejects.toThrow(
      /ENOENT/,
    );
  });

  it("reads the key from AUTH_SIGNING_KEY_FILE, and names the file when it cannot", async () => {
    const jwk = await generateSigningJwk();
    const file = path.join(dir, "mounted.jwk.json");
    await writeFile(file, JSON.stringify(jwk));
    const { logger } = captureLogs();
    const key = await resolveSigningKey(
      { AUTH_SIGNING_KEY_FILE: file, NODE_ENV: "production", DATA_DIR: dir },
      logger,
    );
    expect(key.kid).toBe(jwk.kid);

    const problems = async (config: Parameters<typeof resolveSigningKey>[0]) => {
      const error = await resolveSigningKey(config, logger).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      return (error as ConfigError).problems;
    };
    const missing = path.join(dir, "absent.jwk.json");
    expect(
      await problems({ AUTH_SIGNING_KEY_FILE: missing, NODE_ENV: "production", DATA_DIR: dir }),
    ).toEqual([
      expect.stringMatching(/^AUTH_SIGNING_KEY_FILE .*absent\.jwk\.json cannot be read: ENOENT/),
    ]);
    await writeFile(file, "{oops");
    expect(
      await problems({ AUTH_SIGNING_KEY_FILE: file, NODE_ENV: "production", DATA_DIR: dir }),
    ).toEqual([expect.stringContaining("mounted.jwk.json is not JSON")]);
    expect(
      await problems({
        AUTH_SIGNING_KEY: JSON.stringify(jwk),
        AUTH_SIGNING_KEY_FILE: file,
        NODE_ENV: "production",
        DATA_DIR: dir,
      }),
    ).toEqual(["set AUTH_SIGNING_KEY or AUTH_SIGNING_KEY_FILE, not both"]);
  });

  it.each([
    ["not JSON", "{oops", "AUTH_SIGNING_KEY is not JSON"],
    ["a public key", "PUBLIC", "AUTH_SIGNING_KEY must be an Ed25519 private key as a JWK"],
    ["an RSA key", '{"kty":"RSA","n":"x","e":"AQAB","d":"x"}', "AUTH_SIGNING_KEY must be"],
  ])("names AUTH_SIGNING_KEY when it is %s", async (_what, value, message) => {
    let raw = value;
    if (value === "PUBLIC") {
      const { d: _d, ...publicOnly } = await generateSigningJwk();
      raw = JSON.stringify(publicOnly);
    }
    const error = await resolveSigningKey(
      { AUTH_SIGNING_KEY: raw, NODE_ENV: "production", DATA_DIR: dir },
      captureLogs().logger,
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([expect.stringContaining(message)]);
    expect((error as ConfigError).message).toContain("Invalid configuration:");
  });

  it("in development, creates a key in DATA_DIR, warns, and reuses it on the next start", async () => {
    const dataDir = path.join(dir, "dev");
    const first = captureLogs("warn");
    const key = await resolveSigningKey(
      { NODE_ENV: "development", DATA_DIR: dataDir },
      first.logger,
    );
    const stored = JSON.parse(
      await readFile(path.join(dataDir, "dev-signing-key.jwk.json"), "utf8"),
    );
    expect(stored.kid).toBe(key.kid);
    expect(first.records).toHaveLength(1);
    expect(first.records[0]).toMatchObject({ level: 40, kid: key.kid, dataDir });
    expect(String(first.records[0]?.msg)).toContain("AUTH_SIGNING_KEY is not set");

    const again = await resolveSigningKey(
      { NODE_ENV: "test", DATA_DIR: dataDir },
      captureLogs().logger,
    );
    expect(again.kid).toBe(key.kid);
    const { token } = await new TokenSigner("svc", key).sign({ subject: "svc", ttlSeconds: 60 });
    const verifier = new TokenVerifier({
      issuers: [{ issuer: "svc", keys: [again], issuesUserTokens: false }],
    });
    expect(await verifier.verify(token)).toEqual({ kind: "service", service: "svc" });
  });

  it("is configured only by the services that sign", () => {
    expect(loadConfig(signingKeyConfig(), {})).toEqual({
      AUTH_SIGNING_KEY: undefined,
      AUTH_SIGNING_KEY_FILE: undefined,
    });
  });

  it("reads its settings from the service configuration", () => {
    const config = loadConfig(serviceConfig({ port: 1, dataDir: ".data/x" }), {});
    expect(Object.keys(config)).not.toContain("AUTH_SIGNING_KEY");
    expect(config.NODE_ENV).toBe("development");
    expect(config.DEFAULT_DEADLINE_MS).toBe(10_000);
    expect(config.MAX_DEADLINE_MS).toBe(60_000);
    expect(config.DEADLINE_MARGIN_MS).toBe(10);
  });
});
