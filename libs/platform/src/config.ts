/**
 * Environment configuration, parsed once at start-up.
 *
 * A service declares what it reads with the `env` field parsers below and
 * calls `loadConfig` once in main.ts. Every problem is collected and reported
 * together, naming each variable, so a misconfigured deployment fails at once
 * with a message an operator can act on instead of at the first request.
 */

export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}

/** Reads one variable; throws a string describing the problem. */
export type EnvField<T> = (name: string, raw: string | undefined) => T;

type Env = Record<string, string | undefined>;

export function loadConfig<S extends Record<string, EnvField<unknown>>>(
  schema: S,
  env: Env = process.env,
): { readonly [K in keyof S]: ReturnType<S[K]> } {
  const problems: string[] = [];
  const config: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(schema)) {
    const raw = env[name];
    try {
      config[name] = field(name, raw === "" ? undefined : raw);
    } catch (problem) {
      problems.push(problem instanceof Error ? problem.message : String(problem));
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config) as { readonly [K in keyof S]: ReturnType<S[K]> };
}

/** One variable a service reads, for `--help` and `--config-schema`. */
export interface ConfigVariable {
  name: string;
  /** Set when the variable has no default and the service will not start without it. */
  required: boolean;
  /** The value used when it is unset, as it would be written in the environment. */
  default?: string;
}

/**
 * What a schema reads, found by asking each field for its value when unset:
 * a field that throws is required, one that returns undefined is optional.
 */
export function describeConfig(schema: Record<string, EnvField<unknown>>): ConfigVariable[] {
  return Object.entries(schema).map(([name, field]) => {
    let fallback: unknown;
    try {
      fallback = field(name, undefined);
    } catch {
      return { name, required: true };
    }
    return fallback === undefined
      ? { name, required: false }
      : { name, required: false, default: String(fallback) };
  });
}

function required<T>(name: string, fallback: T | undefined): T {
  if (fallback === undefined) throw new Error(`${name} is required but not set`);
  return fallback;
}

export const env = {
  string(fallback?: string): EnvField<string> {
    return (name, raw) => raw ?? required(name, fallback);
  },

  optionalString(): EnvField<string | undefined> {
    return (_name, raw) => raw;
  },

  int(fallback: number | undefined, range: { min?: number; max?: number } = {}): EnvField<number> {
    const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = range;
    return (name, raw) => {
      if (raw === undefined) return required(name, fallback);
      const value = Number(raw);
      if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(value)) {
        throw new Error(`${name} must be a whole number, got "${raw}"`);
      }
      if (value < min || value > max) {
        throw new Error(`${name} must be between ${min} and ${max}, got ${value}`);
      }
      return value;
    };
  },

  /** A TCP port; 0 asks the operating system for a free one (tests use it). */
  port(fallback?: number): EnvField<number> {
    return env.int(fallback, { min: 0, max: 65535 });
  },

  oneOf<const T extends string>(values: readonly T[], fallback: T): EnvField<T> {
    return (name, raw) => {
      if (raw === undefined) return fallback;
      if (!(values as readonly string[]).includes(raw)) {
        throw new Error(`${name} must be one of ${values.join(", ")}, got "${raw}"`);
      }
      return raw as T;
    };
  },

  bool(fallback: boolean): EnvField<boolean> {
    return (name, raw) => {
      if (raw === undefined) return fallback;
      const value = raw.toLowerCase();
      if (["1", "true", "yes", "on"].includes(value)) return true;
      if (["0", "false", "no", "off"].includes(value)) return false;
      throw new Error(`${name} must be true or false, got "${raw}"`);
    };
  },

  /** A postgres:// or postgresql:// URL; unset means "use the embedded database". */
  postgresUrl(): EnvField<string | undefined> {
    return (name, raw) => {
      if (raw === undefined) return undefined;
      // The scheme is read by hand: `new URL("db.internal:5432")` parses, with scheme "db.internal:".
      // Messages never echo the value, which may hold a password.
      const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(raw)?.[1]?.toLowerCase();
      if (scheme === undefined || !URL.canParse(raw)) {
        throw new Error(`${name} must be a postgresql:// URL, got something that is not a URL`);
      }
      if (scheme !== "postgres" && scheme !== "postgresql") {
        throw new Error(`${name} must be a postgresql:// URL, got a ${scheme}:// URL`);
      }
      return raw;
    };
  },
};
