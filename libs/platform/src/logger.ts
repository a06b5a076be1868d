import { pino } from "pino";

export type Logger = pino.Logger;

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
export const logLevels: readonly LogLevel[] = [
  "fatal",
  "error",
  "warn",
  "info",
  "debug",
  "trace",
  "silent",
];

/**
 * JSON lines on stdout, one object per event, ready for any log shipper.
 * Lines are written in batches of at least 4 KiB, synchronously, and at most
 * 100 ms late: a write(2) per line was a tenth of a unary call's CPU, and
 * asynchronous writes cost more than they save (a thread-pool round trip
 * each) while letting an unread stdout grow the buffer without bound; a
 * synchronous write waits for a slow reader instead. `flushLogs` runs
 * before the process exits.
 */
export function createLogger(
  service: string,
  level: LogLevel = "info",
  destination: pino.DestinationStream = logDestination(1),
): Logger {
  return pino(
    {
      level,
      base: { service },
      timestamp: () => `,"time":"${isoNow()}"`,
      serializers: { err: serializeError },
    },
    destination,
  );
}

let lastMs = 0;
let lastIso = "";
/** The time as ISO 8601, made once per millisecond however many lines share it. */
function isoNow(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastIso = new Date(now).toISOString();
  }
  return lastIso;
}

type PinoInternals = Record<symbol, unknown>;

/**
 * Writes the line every call logs (message "rpc"), exactly as
 * `logger.info({...fields}, "rpc")` would, but formatted by hand: pino's
 * generic serializer was about a seventh of a unary call's CPU. `fields` is
 * the JSON of the fields without braces, e.g. `"rpc":"a/B","code":"OK"`.
 */
export function callLogWriter(logger: Logger): (level: "info" | "warn", fields: string) => void {
  const internals = logger as unknown as PinoInternals;
  const stream = internals[pino.symbols.streamSym] as { write(line: string): void };
  const bindings = internals[pino.symbols.chindingsSym] as string;
  const levels = { info: logger.levels.values.info, warn: logger.levels.values.warn };
  return (level, fields) => {
    if (!logger.isLevelEnabled(level)) return;
    stream.write(
      `{"level":${levels[level]},"time":"${isoNow()}"${bindings},${fields},"msg":"rpc"}\n`,
    );
  };
}

/** Where log lines go (stdout: 1, or a file), in batches (see createLogger). */
export function logDestination(dest: number | string): pino.DestinationStream {
  return new LineBatches(pino.destination({ dest, sync: true }));
}

/**
 * Lines gathered into one string and handed to the writer at 4 KiB, or after
 * 100 ms. sonic-boom can batch by itself (minLength), but it measures the
 * UTF-8 length of its whole pending batch on every line: that was half of
 * the cost of a call's log line. Here a line costs one string append.
 */
class LineBatches implements pino.DestinationStream {
  private pending = "";

  constructor(private readonly out: ReturnType<typeof pino.destination>) {
    setInterval(() => this.flush(), 100).unref();
  }

  write(line: string): void {
    this.pending += line;
    // UTF-16 units, not bytes: a batch only needs to be about this big.
    if (this.pending.length >= 4096) this.flush();
  }

  /** Writes what is pending now (pino's logger.flush calls this). */
  flush(done?: (error?: Error) => void): void {
    if (this.pending !== "") {
      const batch = this.pending;
      this.pending = "";
      this.out.write(batch);
    }
    done?.();
  }
}

/**
 * pino's error serializer copies every enumerable property, and node-postgres
 * hangs its whole Client (connection settings, buffers, queues) on the errors
 * its pool emits: kilobytes of noise per line. Those are left out.
 */
function serializeError(error: Error): pino.SerializedError {
  const { client: _client, ...serialized } = pino.stdSerializers.err(error);
  return serialized as pino.SerializedError;
}

export function flushLogs(logger: Logger): void {
  try {
    logger.flush();
  } catch {
    // Flushing a destination that is already closed is harmless.
  }
}
