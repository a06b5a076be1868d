import { Code } from "@connectrpc/connect";
import { UserEventType, type WatchUsersResponse } from "@meridian/proto/meridian/user/v1/user_pb";
import { callError, type TestDatabase, takeUntil, testDatabaseKinds } from "@meridian/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type ServiceUnderTest, startForTest, testPassword, uniqueEmail } from "./harness.js";

const databaseKinds = await testDatabaseKinds();
const isEvent = (r: WatchUsersResponse) => r.kind.case === "event";
const cursorOf = (r: WatchUsersResponse) => BigInt(r.kind.value?.cursor ?? "-1");
const userOf = (r: WatchUsersResponse | undefined) =>
  r?.kind.case === "event" ? r.kind.value.user : undefined;

/** Opens a watch and reads its first message (always a heartbeat). */
async function openWatch(service: ServiceUnderTest, resumeCursor = "") {
  const abort = new AbortController();
  const stream = service
    .client()
    .watchUsers({ resumeCursor }, { signal: abort.signal })
    [Symbol.asyncIterator]();
  const [first] = await takeUntil(stream, 1);
  expect(first?.kind.case).toBe("heartbeat");
  return { stream, start: first?.kind.value?.cursor ?? "", close: () => abort.abort() };
}

describe.each(databaseKinds)("WatchUsers on $name", (kind) => {
  let db: TestDatabase;
  let service: ServiceUnderTest;
  const cleanups: (() => void)[] = [];
  beforeAll(async () => {
    db = await kind.create();
    service = await startForTest(db);
  });
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });
  afterAll(async () => {
    await service?.stop();
    await db?.drop();
  });

  it("streams each change after its first heartbeat, in order, with increasing cursors", async () => {
    const watch = await openWatch(service);
    cleanups.push(watch.close);
    const { user } = await service
      .client()
      .createUser({ password: testPassword, email: uniqueEmail(), name: "Watched" });
    const id = user?.id ?? "";
    await service
      .client()
      .updateUser({ user: { id, name: "Renamed" }, updateMask: { paths: ["name"] } });
    await service.client().deleteUser({ id });

    const events = (await takeUntil(watch.stream, 3, isEvent)).filter(isEvent);
    expect(events.map((e) => e.kind.case === "event" && e.kind.value.type)).toEqual([
      UserEventType.CREATED,
      UserEventType.UPDATED,
      UserEventType.DELETED,
    ]);
    expect(events.map((e) => userOf(e)?.name)).toEqual(["Watched", "Renamed", "Renamed"]);
    const cursors = events.map(cursorOf);
    expect(cursors[0]).toBeGreaterThan(BigInt(watch.start));
    expect([...cursors].sort((a, b) => (a < b ? -1 : 1))).toEqual(cursors);
    expect(new Set(cursors).size).toBe(3);
  });

  it("sends heartbeats on a quiet stream", async () => {
    const watch = await openWatch(service);
    cleanups.push(watch.close);
    const [beat] = await takeUntil(watch.stream, 1);
    expect(beat?.kind.case).toBe("heartbeat");
    expect(beat?.kind.value?.cursor).toBe(watch.start);
  });

  it("resumes after any cursor with no gap and no duplicate", async () => {
    const watch = await openWatch(service);
    cleanups.push(watch.close);
    for (let i = 0; i < 5; i++) {
      await service
        .client()
        .createUser({ password: testPassword, email: uniqueEmail(), name: `R${i}` });
    }
    const all = (await takeUntil(watch.stream, 5, isEvent)).filter(isEvent);

    const resumed = await openWatch(service, all[1]?.kind.value?.cursor);
    cleanups.push(resumed.close);
    // Three events, then the stream goes quiet: the next message is a heartbeat.
    const rest = await takeUntil(resumed.stream, 1, (r) => r.kind.case === "heartbeat");
    expect(rest.filter(isEvent).map(cursorOf)).toEqual(all.slice(2).map(cursorOf));
  });

  it("replays all history from cursor 0", async () => {
    const watch = await openWatch(service);
    cleanups.push(watch.close);
    const head = BigInt(watch.start);
    const replay = await openWatch(service, "0");
    cleanups.push(replay.close);
    const items = await takeUntil(replay.stream, 1, (r) => r.kind.case === "heartbeat");
    const cursors = items.filter(isEvent).map(cursorOf);
    expect(cursors.at(-1)).toBe(head);
    expect(new Set(cursors).size).toBe(cursors.length);
  });

  it("delivers every event of concurrent writers exactly once, in commit order", async () => {
    const watch = await openWatch(service);
    cleanups.push(watch.close);
    const created = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        service
          .client()
          .createUser({ password: testPassword, email: uniqueEmail("concurrent"), name: `C${i}` }),
      ),
    );
    const live = (await takeUntil(watch.stream, 40, isEvent)).filter(isEvent);
    const liveCursors = live.map(cursorOf);
    for (let i = 1; i < liveCursors.length; i++) {
      expect(liveCursors[i]).toBeGreaterThan(liveCursors[i - 1] as bigint);
    }
    expect(new Set(live.map((e) => userOf(e)?.id))).toEqual(
      new Set(created.map((c) => c.user?.id)),
    );
    // A late reader replaying from the same point sees the very same sequence.
    const replay = await openWatch(service, watch.start);
    cleanups.push(replay.close);
    const replayed = (await takeUntil(replay.stream, 40, isEvent)).filter(isEvent);
    expect(replayed.map(cursorOf)).toEqual(liveCursors);
  });

  it("streams over the Connect protocol with JSON on HTTP/1.1 too, as browsers and curl use it", async () => {
    const abort = new AbortController();
    cleanups.push(() => abort.abort());
    const stream = service
      .client("connect-json")
      .watchUsers({}, { signal: abort.signal })
      [Symbol.asyncIterator]();
    const [first] = await takeUntil(stream, 1);
    expect(first?.kind.case).toBe("heartbeat");
    const { user } = await service
      .client()
      .createUser({ password: testPassword, email: uniqueEmail(), name: "Via h1" });
    const [event] = (await takeUntil(stream, 1, isEvent)).filter(isEvent);
    expect(userOf(event)?.id).toBe(user?.id);
  });

  it("rejects malformed cursors and cursors from the future with INVALID_ARGUMENT", async () => {
    for (const resumeCursor of ["abc", "-1", "99999999999999"]) {
      const stream = service.client().watchUsers({ resumeCursor })[Symbol.asyncIterator]();
      const error = await callError(stream.next());
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toMatch(/^resume_cursor: /);
    }
  });
});

describe.each(databaseKinds)("lifecycle on $name", (kind) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await kind.create();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it("a watcher resuming with its last cursor after a restart sees no gap and no duplicate", async () => {
    const first = await startForTest(db);
    const watch = await openWatch(first);
    await first
      .client()
      .createUser({ password: testPassword, email: uniqueEmail(), name: "Before" });
    const [seen] = (await takeUntil(watch.stream, 1, isEvent)).filter(isEvent);
    await first
      .client()
      .createUser({ password: testPassword, email: uniqueEmail(), name: "Unseen" });
    await first.stop();
    // The stream ended cleanly (no error) when the service stopped.
    for (let next = await watch.stream.next(); !next.done; next = await watch.stream.next()) {}

    const second = await startForTest(db);
    try {
      await second
        .client()
        .createUser({ password: testPassword, email: uniqueEmail(), name: "After" });
      const resumed = await openWatch(second, seen?.kind.value?.cursor);
      const items = await takeUntil(resumed.stream, 2, isEvent);
      resumed.close();
      expect(items.filter(isEvent).map((e) => userOf(e)?.name)).toEqual(["Unseen", "After"]);
    } finally {
      await second.stop();
    }
  });

  it("shuts down gracefully: in-flight calls finish, streams end cleanly, new calls are refused", async () => {
    const service = await startForTest(db);
    const watch = await openWatch(service);
    const healthWatch = service.health().watch({})[Symbol.asyncIterator]();
    expect((await healthWatch.next()).value?.status).toBe(1);

    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let firstRowSent: () => void = () => {};
    const firstRow = new Promise<void>((resolve) => {
      firstRowSent = resolve;
    });
    async function* slowImport() {
      yield { email: uniqueEmail("inflight"), name: "One" };
      firstRowSent();
      await released;
      yield { email: uniqueEmail("inflight"), name: "Two" };
    }
    const importCall = service.client().importUsers(slowImport());
    await firstRow;

    const stopped = service.stop();
    // Health reports NOT_SERVING, then its stream ends.
    expect((await healthWatch.next()).value?.status).toBe(2);
    expect((await healthWatch.next()).done).toBe(true);
    // The watch stream ends without an error.
    const rest: unknown[] = [];
    for (let next = await watch.stream.next(); !next.done; next = await watch.stream.next()) {
      rest.push(next.value);
    }
    release();
    expect(await importCall).toMatchObject({ createdCount: 2, failedCount: 0 });
    await stopped;

    const refused = await callError(
      service.client().getUser({ id: "00000000-0000-4000-8000-000000000000" }),
    );
    expect(refused.code).toBe(Code.Unavailable);
  });
});

describe("shutdown with a call that will not finish", () => {
  it("cancels it with UNAVAILABLE once SHUTDOWN_GRACE_MS has passed", async () => {
    const [kind] = databaseKinds;
    const db = await (kind as NonNullable<typeof kind>).create();
    const service = await startForTest(db, { SHUTDOWN_GRACE_MS: "200" });
    const watch = await openWatch(service);
    const never = new AbortController();
    async function* stuckImport() {
      yield { email: uniqueEmail("stuck"), name: "Stuck" };
      // The client never ends its request stream.
      await new Promise((resolve) => never.signal.addEventListener("abort", resolve));
    }
    const call = callError(service.client().importUsers(stuckImport()));
    // The server has read the first row (its user exists): the call is in flight.
    await takeUntil(watch.stream, 1, isEvent);
    const started = Date.now();
    await service.stop();
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect((await call).code).toBe(Code.Unavailable);
    never.abort();
    await db.drop();
  });
});

const postgres = databaseKinds.find((k) => k.name === "postgres");
describe.runIf(postgres)("replicas on PostgreSQL", () => {
  it("live events reach watchers on every replica, not only the writer's", async () => {
    const db = await (postgres as NonNullable<typeof postgres>).create();
    const writer = await startForTest(db);
    const reader = await startForTest(db);
    try {
      const watch = await openWatch(reader);
      const { user } = await writer
        .client()
        .createUser({ password: testPassword, email: uniqueEmail(), name: "Across" });
      const [event] = (await takeUntil(watch.stream, 1, isEvent, 3000)).filter(isEvent);
      watch.close();
      expect(userOf(event)?.id).toBe(user?.id);
    } finally {
      await Promise.all([writer.stop(), reader.stop()]);
      await db.drop();
    }
  });
});

describe("the embedded database", () => {
  it("refuses a second service on the same data directory instead of losing writes", async () => {
    const pglite = databaseKinds.find((k) => k.name === "pglite");
    const db = await (pglite as NonNullable<typeof pglite>).create();
    const first = await startForTest(db);
    try {
      await expect(startForTest(db)).rejects.toThrow(
        `is in use by process ${process.pid} (this process)`,
      );
      // The first service is unharmed.
      expect((await first.health().check({})).status).toBe(1);
    } finally {
      await first.stop();
    }
    // Once the first has stopped, the directory is free again.
    const second = await startForTest(db);
    await second.stop();
    await db.drop();
  });
});
