/**
 * A database outage on PostgreSQL, made real: the test database stops
 * accepting connections and its sessions are terminated, then it comes back.
 */
import { Code } from "@connectrpc/connect";
import type { WatchUsersResponse } from "@meridian/proto/meridian/user/v1/user_pb";
import { callError, takeUntil, testDatabaseKinds, testPostgresUrl } from "@meridian/testkit";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { startForTest, testPassword, uniqueEmail } from "./harness.js";

const postgres = (await testDatabaseKinds()).find((k) => k.name === "postgres");

async function setAvailable(database: string, available: boolean): Promise<void> {
  const admin = new pg.Client({ connectionString: testPostgresUrl });
  await admin.connect();
  try {
    await admin.query(`ALTER DATABASE ${database} ALLOW_CONNECTIONS ${available}`);
    if (!available) {
      await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
        [database],
      );
    }
  } finally {
    await admin.end();
  }
}

describe.runIf(postgres)("a database outage on PostgreSQL", () => {
  it("turns health NOT_SERVING and calls UNAVAILABLE, and recovers without a restart", async () => {
    const db = await (postgres as NonNullable<typeof postgres>).create();
    const database = new URL(db.env.DATABASE_URL as string).pathname.slice(1);
    const service = await startForTest(db);
    const abort = new AbortController();
    try {
      const watch = service
        .client()
        .watchUsers({}, { signal: abort.signal })
        [Symbol.asyncIterator]();
      await takeUntil(watch, 1);

      await setAvailable(database, false);
      expect((await service.health().check({})).status).toBe(2);
      const error = await callError(
        service.client().getUser({ id: "00000000-0000-4000-8000-000000000000" }),
      );
      expect(error.code).toBe(Code.Unavailable);
      expect(error.rawMessage).toBe("the database is unavailable; retry later");

      await setAvailable(database, true);
      expect((await service.health().check({})).status).toBe(1);
      const { user } = await service
        .client()
        .createUser({ password: testPassword, email: uniqueEmail(), name: "Back" });
      // The watch stream survived, and its LISTEN connection came back: the
      // event arrives well before the 5 s safety poll would have found it.
      const isEvent = (r: WatchUsersResponse) => r.kind.case === "event";
      const [event] = (await takeUntil(watch, 1, isEvent, 3000)).filter(isEvent);
      expect(event?.kind.case === "event" && event.kind.value.user?.id).toBe(user?.id);
    } finally {
      abort.abort();
      await setAvailable(database, true);
      await service.stop();
      await db.drop();
    }
  });
});
