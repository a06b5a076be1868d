/**
 * The log line format: JSON with the service name, and errors without the
 * driver objects node-postgres attaches to them.
 */
import { Writable } from "node:stream";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { callLogWriter, createLogger } from "../src/logger.js";

/** A stream that keeps every line written to it. */
function lineSink() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, sink };
}

describe("createLogger", () => {
  it("writes the per-call line exactly as logger.info would", async () => {
    const { lines, sink } = lineSink();
    const logger = createLogger("svc", "info", sink);
    const fields = {
      rpc: "meridian.user.v1.UserService/GetUser",
      code: "OK",
      ms: 0.25,
      peer: '1.2.3.4:5 "q"',
    };
    logger.info(fields, "rpc");
    const write = callLogWriter(logger);
    write("info", JSON.stringify(fields).slice(1, -1));
    write("warn", JSON.stringify(fields).slice(1, -1));
    // Below the logger's level: nothing written.
    callLogWriter(createLogger("quiet", "error", sink))("warn", '"x":1');
    await new Promise((resolve) => setImmediate(resolve));

    const [byPino, byHand, warned] = lines.map((line) => JSON.parse(line));
    expect(lines).toHaveLength(3);
    expect(Object.keys(byHand)).toEqual(Object.keys(byPino));
    expect({ ...byHand, time: 0 }).toEqual({ ...byPino, time: 0 });
    expect(warned.level).toBe(40);
  });

  it("logs a database error's message and code, not the client it carries", async () => {
    const { lines, sink } = lineSink();
    const logger = createLogger("svc", "info", sink);
    const client = new pg.Client({ connectionString: "postgresql://u:hunter2@127.0.0.1:1/db" });
    const error = Object.assign(new Error("terminating connection"), { code: "57P01", client });
    logger.warn({ err: error }, "idle database connection failed");
    await new Promise((resolve) => setImmediate(resolve));

    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0] as string);
    expect(line).toMatchObject({
      service: "svc",
      msg: "idle database connection failed",
      err: { type: "Error", message: "terminating connection", code: "57P01" },
    });
    expect(line.err).not.toHaveProperty("client");
    expect(lines[0]).not.toContain("hunter2");
  });
});
