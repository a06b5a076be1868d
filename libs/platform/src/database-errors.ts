/**
 * What a database error means, whichever driver adapter raised it.
 *
 * Prisma wraps driver errors in two shapes: a PrismaClientKnownRequestError
 * whose meta.driverAdapterError.cause says what happened, or a bare
 * DriverAdapterError whose cause does. The PGlite adapter (built for Prisma
 * 6.10) also reports SQL errors as a raw `{ kind: "postgres", code }` that
 * Prisma 6.19 no longer turns into P2002 and friends. Repositories and the
 * error mapping ask these functions instead of matching Prisma's P-codes.
 */

interface AdapterErrorCause {
  kind?: string;
  /** SQLSTATE, as Prisma's own adapters report it. */
  originalCode?: string;
  /** SQLSTATE, as a raw `kind: "postgres"` error reports it. */
  code?: string;
  severity?: string;
}

function adapterCause(error: unknown): AdapterErrorCause | undefined {
  const shaped = error as
    | { meta?: { driverAdapterError?: { cause?: AdapterErrorCause } }; cause?: AdapterErrorCause }
    | null
    | undefined;
  return shaped?.meta?.driverAdapterError?.cause ?? shaped?.cause;
}

/** The PostgreSQL SQLSTATE behind a Prisma or driver-adapter error, if any. */
export function sqlState(error: unknown): string | undefined {
  const cause = adapterCause(error);
  return cause?.originalCode ?? cause?.code;
}

/** unique_violation: an INSERT or UPDATE hit a unique index. */
export function isUniqueViolation(error: unknown): boolean {
  return sqlState(error) === "23505";
}

const unreachable = new Set([
  "DatabaseNotReachable",
  "ConnectionClosed",
  "SocketTimeout",
  "TooManyConnections",
  "TlsConnectionError",
]);

/**
 * The database cannot be reached or will not take the session right now:
 * the caller should retry later (gRPC UNAVAILABLE), not report a bug.
 * Connection exceptions (SQLSTATE class 08), server shutdown (57P01-57P03),
 * too many connections (53300), any FATAL error, which PostgreSQL only
 * raises when it ends or refuses the session, and Prisma's P2028: a
 * transaction that could not start (or finish) in time because every
 * connection was busy. Under load that is congestion, not a fault, and a
 * retry with the same idempotency key completes the work.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if ((error as { code?: unknown } | null | undefined)?.code === "P2028") return true;
  const cause = adapterCause(error);
  if (cause?.kind !== undefined && unreachable.has(cause.kind)) return true;
  const state = sqlState(error);
  if (state?.startsWith("08") || state?.startsWith("57P") || state === "53300") return true;
  return cause?.severity === "FATAL";
}
