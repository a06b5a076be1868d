import { Writable } from "node:stream";
import type { Logger } from "@meridian/platform";
import { pino } from "pino";

export interface CapturedLogs {
  logger: Logger;
  /** Every record written so far, parsed. */
  readonly records: Record<string, unknown>[];
}

/** A real pino logger whose JSON lines tests can read back. */
export function captureLogs(level: pino.Level = "info"): CapturedLogs {
  const records: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (line) records.push(JSON.parse(line));
      }
      done();
    },
  });
  return { logger: pino({ level }, sink), records };
}
