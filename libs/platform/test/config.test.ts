import { describe, expect, it } from "vitest";
import { ConfigError, type EnvField, env, loadConfig } from "../src/config.js";

/** Runs `loadConfig` expecting it to fail, and returns the ConfigError. */
function configError(
  schema: Record<string, EnvField<unknown>>,
  vars: Record<string, string | undefined>,
): ConfigError {
  try {
    loadConfig(schema, vars);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected loadConfig to throw a ConfigError");
}

describe("loadConfig", () => {
  const schema = {
    PORT: env.port(8080),
    LOG_LEVEL: env.oneOf(["debug", "info", "warn"], "info"),
    POOL_SIZE: env.int(10, { min: 1, max: 100 }),
    TLS: env.bool(false),
    REGION: env.string("eu-west-1"),
    NOTE: env.optionalString(),
    DATABASE_URL: env.postgresUrl(),
  };

  it("applies every default when the variables are unset", () => {
    expect(loadConfig(schema, {})).toEqual({
      PORT: 8080,
      LOG_LEVEL: "info",
      POOL_SIZE: 10,
      TLS: false,
      REGION: "eu-west-1",
      NOTE: undefined,
      DATABASE_URL: undefined,
    });
  });

  it("treats an empty string exactly like an unset variable", () => {
    const empty = Object.fromEntries(Object.keys(schema).map((name) => [name, ""]));
    expect(loadConfig(schema, empty)).toEqual(loadConfig(schema, {}));
  });

  it("parses every field when the variables are set", () => {
    const config = loadConfig(schema, {
      PORT: "9000",
      LOG_LEVEL: "debug",
      POOL_SIZE: "100",
      TLS: "yes",
      REGION: "us-east-2",
      NOTE: "hello",
      DATABASE_URL: "postgresql://app:pw@db.internal:5432/meridian",
    });
    expect(config).toEqual({
      PORT: 9000,
      LOG_LEVEL: "debug",
      POOL_SIZE: 100,
      TLS: true,
      REGION: "us-east-2",
      NOTE: "hello",
      DATABASE_URL: "postgresql://app:pw@db.internal:5432/meridian",
    });
  });

  it("returns a frozen object and ignores variables the schema does not declare", () => {
    const config = loadConfig({ PORT: env.port(1) }, { PORT: "2", OTHER: "x" });
    expect(config).toEqual({ PORT: 2 });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("reads process.env when no environment is passed", () => {
    const name = `MERIDIAN_CONFIG_TEST_${process.pid}`;
    process.env[name] = "42";
    try {
      expect(loadConfig({ [name]: env.int(undefined) })[name]).toBe(42);
    } finally {
      delete process.env[name];
    }
  });

  it("names the variable and the bad value in the message", () => {
    const error = configError({ POOL_SIZE: env.int(10) }, { POOL_SIZE: "lots" });
    expect(error.name).toBe("ConfigError");
    expect(error.problems).toEqual(['POOL_SIZE must be a whole number, got "lots"']);
    expect(error.message).toBe(
      'Invalid configuration:\n  - POOL_SIZE must be a whole number, got "lots"',
    );
  });

  it("reports every bad variable at once, in schema order", () => {
    const error = configError(schema, {
      PORT: "http",
      LOG_LEVEL: "verbose",
      POOL_SIZE: "0",
      TLS: "maybe",
      REGION: "",
      DATABASE_URL: "mysql://db/app",
    });
    expect(error.problems).toEqual([
      'PORT must be a whole number, got "http"',
      'LOG_LEVEL must be one of debug, info, warn, got "verbose"',
      "POOL_SIZE must be between 1 and 100, got 0",
      'TLS must be true or false, got "maybe"',
      "DATABASE_URL must be a postgresql:// URL, got a mysql:// URL",
    ]);
    for (const problem of error.problems) expect(error.message).toContain(`  - ${problem}`);
  });

  describe("env.int", () => {
    const field = { N: env.int(7, { min: -5, max: 5 }) };
    const parse = (raw: string) => loadConfig(field, { N: raw }).N;

    it("accepts whole numbers within the range, including both bounds", () => {
      expect(parse("-5")).toBe(-5);
      expect(parse("0")).toBe(0);
      expect(parse("5")).toBe(5);
      expect(parse(" 3 ")).toBe(3);
    });

    it("rejects values outside the range, naming the bounds and the value", () => {
      expect(configError(field, { N: "6" }).problems).toEqual([
        "N must be between -5 and 5, got 6",
      ]);
      expect(configError(field, { N: "-6" }).problems).toEqual([
        "N must be between -5 and 5, got -6",
      ]);
    });

    it.each(["1.5", "1e3", "0x10", "+1", "ten", "1_000", "  ", "9007199254740993"])(
      "rejects %j as not a whole number",
      (raw) => {
        expect(configError({ N: env.int(7) }, { N: raw }).problems).toEqual([
          `N must be a whole number, got "${raw}"`,
        ]);
      },
    );

    it("is unbounded without a range", () => {
      const big = String(Number.MAX_SAFE_INTEGER);
      expect(loadConfig({ N: env.int(0) }, { N: big }).N).toBe(Number.MAX_SAFE_INTEGER);
      expect(loadConfig({ N: env.int(0) }, { N: `-${big}` }).N).toBe(-Number.MAX_SAFE_INTEGER);
    });

    it("is required when it has no fallback", () => {
      expect(configError({ N: env.int(undefined) }, {}).problems).toEqual([
        "N is required but not set",
      ]);
      expect(configError({ N: env.int(undefined) }, { N: "" }).problems).toEqual([
        "N is required but not set",
      ]);
    });
  });

  describe("env.port", () => {
    const field = { PORT: env.port(50051) };

    it("accepts 0 (any free port) through 65535", () => {
      expect(loadConfig(field, { PORT: "0" }).PORT).toBe(0);
      expect(loadConfig(field, { PORT: "443" }).PORT).toBe(443);
      expect(loadConfig(field, { PORT: "65535" }).PORT).toBe(65535);
    });

    it("rejects ports outside 0..65535", () => {
      expect(configError(field, { PORT: "65536" }).problems).toEqual([
        "PORT must be between 0 and 65535, got 65536",
      ]);
      expect(configError(field, { PORT: "-1" }).problems).toEqual([
        "PORT must be between 0 and 65535, got -1",
      ]);
    });
  });

  describe("env.oneOf", () => {
    const field = { MODE: env.oneOf(["fast", "safe"], "safe") };

    it("accepts exactly the listed values", () => {
      expect(loadConfig(field, { MODE: "fast" }).MODE).toBe("fast");
      expect(loadConfig(field, { MODE: "safe" }).MODE).toBe("safe");
      expect(loadConfig(field, {}).MODE).toBe("safe");
    });

    it("rejects anything else, case-sensitively, listing the allowed values", () => {
      expect(configError(field, { MODE: "FAST" }).problems).toEqual([
        'MODE must be one of fast, safe, got "FAST"',
      ]);
    });
  });

  describe("env.bool", () => {
    const field = { FLAG: env.bool(true) };

    it.each(["1", "true", "TRUE", "yes", "On"])("reads %j as true", (raw) => {
      expect(loadConfig({ FLAG: env.bool(false) }, { FLAG: raw }).FLAG).toBe(true);
    });

    it.each(["0", "false", "False", "no", "OFF"])("reads %j as false", (raw) => {
      expect(loadConfig(field, { FLAG: raw }).FLAG).toBe(false);
    });

    it("rejects anything else", () => {
      expect(configError(field, { FLAG: "enabled" }).problems).toEqual([
        'FLAG must be true or false, got "enabled"',
      ]);
    });
  });

  describe("env.postgresUrl", () => {
    const field = { DATABASE_URL: env.postgresUrl() };

    it("accepts postgres:// and postgresql:// URLs unchanged", () => {
      for (const url of [
        "postgres://localhost/app",
        "postgresql://u:p@h:5433/db?sslmode=require",
      ]) {
        expect(loadConfig(field, { DATABASE_URL: url }).DATABASE_URL).toBe(url);
      }
    });

    it("rejects something that is not a URL, without echoing it", () => {
      const error = configError(field, { DATABASE_URL: "user=app password=s3cret host=db" });
      expect(error.problems).toEqual([
        "DATABASE_URL must be a postgresql:// URL, got something that is not a URL",
      ]);
      expect(error.message).not.toContain("s3cret");
    });

    it("rejects a bare host:port", () => {
      const error = configError(field, { DATABASE_URL: "db.internal:5432" });
      expect(error.problems).toEqual([
        "DATABASE_URL must be a postgresql:// URL, got something that is not a URL",
      ]);
    });

    it("rejects other schemes, naming the scheme but not the credentials", () => {
      const error = configError(field, { DATABASE_URL: "mysql://root:s3cret@db/app" });
      expect(error.problems).toEqual([
        "DATABASE_URL must be a postgresql:// URL, got a mysql:// URL",
      ]);
      expect(error.message).not.toContain("s3cret");
    });
  });

  describe("env.string", () => {
    it("uses the value, else the fallback", () => {
      expect(loadConfig({ S: env.string("dflt") }, { S: "value" }).S).toBe("value");
      expect(loadConfig({ S: env.string("dflt") }, {}).S).toBe("dflt");
    });

    it("is required when it has no fallback, and empty counts as unset", () => {
      expect(configError({ S: env.string() }, {}).problems).toEqual(["S is required but not set"]);
      expect(configError({ S: env.string() }, { S: "" }).problems).toEqual([
        "S is required but not set",
      ]);
    });
  });
});
