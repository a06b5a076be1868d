import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { isDatabaseUnavailable, isUniqueViolation, sqlState } from "../src/database-errors.js";
import { toConnectError } from "../src/errors.js";

// The two shapes Prisma 6.19 gives driver errors, as seen from @prisma/adapter-pg and
// pglite-prisma-adapter (copied from real errors logged by the user service's tests).
const knownRequestError = (cause: object) =>
  Object.assign(new Error("prisma"), { code: "P1001", meta: { driverAdapterError: { cause } } });
const driverAdapterError = (cause: object) => Object.assign(new Error("driver"), { cause });

describe("sqlState and isUniqueViolation", () => {
  it("read the SQLSTATE from either shape", () => {
    const fromPg = knownRequestError({ originalCode: "23505", kind: "UniqueConstraintViolation" });
    const fromPglite = driverAdapterError({ kind: "postgres", code: "23505" });
    expect(sqlState(fromPg)).toBe("23505");
    expect(sqlState(fromPglite)).toBe("23505");
    expect(isUniqueViolation(fromPg)).toBe(true);
    expect(isUniqueViolation(fromPglite)).toBe(true);
    expect(isUniqueViolation(driverAdapterError({ kind: "postgres", code: "23503" }))).toBe(false);
    expect(sqlState(new Error("plain"))).toBeUndefined();
    expect(sqlState(undefined)).toBeUndefined();
  });
});

describe("isDatabaseUnavailable", () => {
  it.each([
    [
      "unreachable host",
      knownRequestError({ kind: "DatabaseNotReachable", host: "h", port: 5432 }),
    ],
    ["closed connection", driverAdapterError({ kind: "ConnectionClosed" })],
    ["connection exception", driverAdapterError({ kind: "postgres", code: "08006" })],
    ["admin shutdown", knownRequestError({ originalCode: "57P01", kind: "postgres" })],
    ["too many connections", driverAdapterError({ kind: "postgres", code: "53300" })],
    ["refused session", driverAdapterError({ kind: "postgres", code: "55000", severity: "FATAL" })],
    [
      "a transaction that could not start in time (P2028)",
      Object.assign(
        new Error("Transaction API error: Unable to start a transaction in the given time."),
        {
          code: "P2028",
        },
      ),
    ],
  ])("is true for %s", (_, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  it.each([
    [
      "a unique violation",
      driverAdapterError({ kind: "postgres", code: "23505", severity: "ERROR" }),
    ],
    ["a plain error", new Error("bug")],
    ["nothing", undefined],
  ])("is false for %s", (_, error) => {
    expect(isDatabaseUnavailable(error)).toBe(false);
  });

  it("makes toConnectError answer UNAVAILABLE, and still log the real error", () => {
    const logged: unknown[] = [];
    const outage = knownRequestError({ kind: "DatabaseNotReachable", host: "db", port: 5432 });
    const error = toConnectError(outage, (e) => logged.push(e));
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toBe("the database is unavailable; retry later");
    expect(logged).toEqual([outage]);
  });
});
