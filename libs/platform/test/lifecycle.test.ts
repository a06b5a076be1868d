/**
 * runService: bad configuration exits 2 naming every problem, before
 * anything listens; a running service stops on SIGTERM/SIGINT and exits 0.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { ConfigError, describeConfig, env } from "../src/config.js";
import { runService } from "../src/lifecycle.js";
import { resolveSigningKey } from "../src/service-config.js";

class Exited extends Error {
  constructor(readonly code: number | string | null | undefined) {
    super(`process.exit(${code})`);
  }
}

describe("runService", () => {
  let exit: MockInstance<typeof process.exit>;
  let consoleError: MockInstance<typeof console.error>;
  let signalListeners: { SIGTERM: NodeJS.SignalsListener[]; SIGINT: NodeJS.SignalsListener[] };

  beforeEach(() => {
    exit = vi.spyOn(process, "exit").mockImplementation((code) => {
      throw new Exited(code);
    });
    consoleError = vi.spyOn(console, "error").mockImplementation(() => {});
    signalListeners = {
      SIGTERM: process.listeners("SIGTERM"),
      SIGINT: process.listeners("SIGINT"),
    };
  });
  afterEach(() => {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      for (const listener of process.listeners(signal)) {
        if (!signalListeners[signal].includes(listener)) process.off(signal, listener);
      }
    }
    vi.restoreAllMocks();
  });

  /** The signal handlers runService added. */
  const added = (signal: "SIGTERM" | "SIGINT") =>
    process.listeners(signal).filter((l) => !signalListeners[signal].includes(l));

  it("exits 2, naming every problem, when the configuration is invalid", async () => {
    const start = vi.fn();
    const run = runService({
      name: "svc",
      config: { PORT: env.port(1), LOG_LEVEL: env.oneOf(["info"], "info") },
      env: { PORT: "http", LOG_LEVEL: "loud" },
      logLevel: () => "silent",
      start,
    });
    await expect(run).rejects.toEqual(new Exited(2));
    expect(exit).toHaveBeenCalledWith(2);
    expect(start).not.toHaveBeenCalled();
    expect(consoleError).toHaveBeenCalledTimes(1);
    const message = String(consoleError.mock.calls[0]?.[0]);
    expect(message).toMatch(/^svc: Invalid configuration:/);
    expect(message).toContain('PORT must be a whole number, got "http"');
    expect(message).toContain('LOG_LEVEL must be one of info, got "loud"');
    expect(added("SIGTERM")).toEqual([]);
  });

  it("exits 2 for a configuration problem found while starting, such as a missing signing key", async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "meridian-platform-run-"));
    try {
      const run = runService({
        name: "svc",
        config: { NODE_ENV: env.string("production"), DATA_DIR: env.string(dataDir) },
        env: {},
        logLevel: () => "silent",
        start: async (config, logger) => {
          await resolveSigningKey(config, logger);
          return { stop: async () => {} };
        },
      });
      await expect(run).rejects.toEqual(new Exited(2));
      expect(String(consoleError.mock.calls[0]?.[0])).toMatch(
        /^svc: Invalid configuration:\n {2}- AUTH_SIGNING_KEY or AUTH_SIGNING_KEY_FILE is required when NODE_ENV=production/,
      );
      expect(added("SIGTERM")).toEqual([]);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it("lets any other start-up failure through, without exiting", async () => {
    const bug = new Error("port in use");
    await expect(
      runService({
        name: "svc",
        config: {},
        env: {},
        logLevel: () => "silent",
        start: async () => {
          throw bug;
        },
      }),
    ).rejects.toBe(bug);
    expect(exit).not.toHaveBeenCalled();
  });

  describe("describes its configuration instead of starting", () => {
    const schema = {
      PORT: env.port(50051),
      DATABASE_URL: env.postgresUrl(),
      SECRET: env.string(),
    };
    const run = async (flag: string) => {
      const write = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
      const start = vi.fn();
      await runService({
        name: "svc",
        config: schema,
        env: { PORT: "not read" },
        argv: ["node", "main.js", flag],
        logLevel: () => "silent",
        start,
      });
      expect(start).not.toHaveBeenCalled();
      expect(exit).not.toHaveBeenCalled();
      return write.mock.calls.map(([chunk]) => String(chunk)).join("");
    };

    it("--config-schema prints every variable as JSON: required, optional or its default", async () => {
      const expected = [
        { name: "PORT", required: false, default: "50051" },
        { name: "DATABASE_URL", required: false },
        { name: "SECRET", required: true },
      ];
      expect(describeConfig(schema)).toEqual(expected);
      expect(JSON.parse(await run("--config-schema"))).toEqual(expected);
    });

    it("--help lists them for a person", async () => {
      const lines = (await run("--help")).trimEnd().split("\n");
      expect(lines[0]).toBe("svc: configured only by environment variables");
      expect(lines.slice(2).map((l) => l.trim().split(/\s+/))).toEqual([
        ["PORT", "50051"],
        ["DATABASE_URL", "optional"],
        ["SECRET", "required"],
      ]);
    });
  });

  it("starts with the loaded configuration and a logger at its level", async () => {
    const start = vi.fn(async () => ({ stop: async () => {} }));
    await runService({
      name: "svc",
      config: { PORT: env.port(1), HOST: env.string("127.0.0.1") },
      env: { HOST: "0.0.0.0" },
      logLevel: () => "silent",
      start,
    });
    expect(start).toHaveBeenCalledTimes(1);
    const [given, logger] = start.mock.calls[0] as unknown as [unknown, { level: string }];
    expect(given).toEqual({ PORT: 1, HOST: "0.0.0.0" });
    expect(logger.level).toBe("silent");
    expect(added("SIGTERM")).toHaveLength(1);
    expect(added("SIGINT")).toHaveLength(1);
  });

  describe("once running", () => {
    const exits: (number | string | null | undefined)[] = [];
    beforeEach(() => {
      exits.length = 0;
      exit.mockImplementation(((code) => {
        exits.push(code);
      }) as typeof process.exit);
    });

    const running = async (stop: () => Promise<void>) => {
      await runService({
        name: "svc",
        config: {},
        env: {},
        logLevel: () => "silent",
        start: async () => ({ stop }),
      });
      const [onSigterm] = added("SIGTERM");
      const [onSigint] = added("SIGINT");
      if (onSigterm === undefined || onSigint === undefined) throw new Error("no signal handlers");
      return { onSigterm, onSigint };
    };

    it.each(["SIGTERM", "SIGINT"] as const)("stops on %s, then exits 0", async (signal) => {
      const stop = vi.fn(async () => {});
      const handlers = await running(stop);
      (signal === "SIGTERM" ? handlers.onSigterm : handlers.onSigint)(signal);
      await vi.waitFor(() => expect(exits).toEqual([0]));
      expect(stop).toHaveBeenCalledTimes(1);
    });

    it("exits 1 when stopping fails", async () => {
      const { onSigterm } = await running(async () => {
        throw new Error("database would not close");
      });
      onSigterm("SIGTERM");
      await vi.waitFor(() => expect(exits).toEqual([1]));
    });

    it("exits 1 at once on a second signal while stopping", async () => {
      let finishStopping = () => {};
      const stop = vi.fn(
        () =>
          new Promise<void>((resolve) => {
            finishStopping = resolve;
          }),
      );
      const { onSigterm, onSigint } = await running(stop);
      onSigterm("SIGTERM");
      expect(exits).toEqual([]);
      // process.exit does not return: the mock throws so nothing after it runs.
      exit.mockImplementation(((code) => {
        exits.push(code);
        if (code === 1) throw new Exited(code);
      }) as typeof process.exit);
      expect(() => onSigint("SIGINT")).toThrow(Exited);
      expect(exits).toEqual([1]);
      expect(stop).toHaveBeenCalledTimes(1);
      finishStopping();
      await vi.waitFor(() => expect(exits).toEqual([1, 0]));
    });
  });

  it("ConfigError lists each problem on its own line", () => {
    expect(new ConfigError(["A is bad", "B is bad"]).message).toBe(
      "Invalid configuration:\n  - A is bad\n  - B is bad",
    );
  });
});
