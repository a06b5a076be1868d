import { type CapturedLogs, captureLogs, takeUntil } from "@meridian/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../src/errors.js";
import {
  EventFeed,
  type EventFeedOptions,
  type EventSource,
  parseResumeCursor,
  type WakeupSubscription,
  type WatchItem,
  type WatchOptions,
  watchResponses,
} from "../src/event-feed.js";

interface TestEvent {
  readonly cursor: bigint;
  readonly message: string;
}

/**
 * An outbox in memory: events in cursor order, read the way the database
 * source reads them, with wake-ups standing in for LISTEN/NOTIFY.
 */
class MemorySource implements EventSource<TestEvent> {
  readonly events: TestEvent[] = [];
  /** The `after` of every readAfter call, in order. */
  readonly reads: bigint[] = [];
  /** How many of the next reads fail, as if the database were unreachable. */
  failReads = 0;
  subscriptions = 0;
  unsubscribed = 0;
  private onWake: (() => void) | undefined;
  /** The sequence: cursors are never reused, even after events are purged. */
  private lastCursor = 0n;
  private gate = Promise.resolve();

  constructor(history = 0) {
    this.append(history, { wake: false });
  }

  /** Commits `count` events; by default notifies the feed, as the trigger would. */
  append(count: number, { wake = true } = {}): TestEvent[] {
    const added: TestEvent[] = [];
    for (let i = 0; i < count; i++) {
      this.lastCursor++;
      const cursor = this.lastCursor;
      const event = { cursor, message: `event ${cursor}` };
      this.events.push(event);
      added.push(event);
    }
    if (wake) this.onWake?.();
    return added;
  }

  async readAfter(after: bigint, limit: number): Promise<TestEvent[]> {
    this.reads.push(after);
    const failing = this.failReads > 0;
    if (failing) this.failReads--;
    // The read sees what was committed when it started...
    const snapshot = this.events.filter((event) => event.cursor > after).slice(0, limit);
    // ...and, being I/O, lets timers and other callbacks run before it returns.
    await new Promise(setImmediate);
    await this.gate;
    if (failing) throw new Error("connection refused");
    return snapshot;
  }

  /** Holds every read until the returned function is called. */
  holdReads(): () => void {
    let release = () => {};
    this.gate = new Promise((resolve) => {
      release = resolve;
    });
    return release;
  }

  async latestCursor(): Promise<bigint> {
    return this.lastCursor;
  }

  readonly wakeups: WakeupSubscription = async (onWake) => {
    this.subscriptions++;
    this.onWake = onWake;
    return async () => {
      this.unsubscribed++;
      this.onWake = undefined;
    };
  };
}

type Item = WatchItem<TestEvent>;
const isEvent = (item: Item) => item.event !== undefined;
const isHeartbeat = (item: Item) => item.heartbeat !== undefined;
const cursors = (items: Item[]) => items.flatMap((item) => (item.event ? [item.event.cursor] : []));
const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => BigInt(from + i));

/** Long enough for a slow CI machine, short enough to fail fast. */
const timeoutMs = 2_000;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

interface StartedFeed {
  feed: EventFeed<TestEvent>;
  draining: AbortController;
  logs: CapturedLogs;
}

async function startFeed(
  source: MemorySource,
  options: Partial<Omit<EventFeedOptions<TestEvent>, "source" | "draining">> = {},
): Promise<StartedFeed> {
  const draining = new AbortController();
  cleanups.push(() => draining.abort());
  const logs = captureLogs();
  const feed = await EventFeed.start<TestEvent>({
    source,
    wakeups: source.wakeups,
    draining: draining.signal,
    logger: logs.logger,
    ...options,
  });
  return { feed, draining, logs };
}

interface OpenWatch {
  items: AsyncIterableIterator<Item>;
  close: () => void;
}

function watch(
  feed: EventFeed<TestEvent>,
  options: Omit<WatchOptions<TestEvent>, "signal"> = {},
): OpenWatch {
  const abort = new AbortController();
  cleanups.push(() => abort.abort());
  const items = feed.watch({ ...options, signal: abort.signal });
  return { items, close: () => abort.abort() };
}

/** The next item, failing the test instead of hanging. */
async function next(items: AsyncIterableIterator<Item>): Promise<Item> {
  const [item] = await takeUntil(items, 1, undefined, timeoutMs);
  return item as Item;
}

/** Reads up to and including the `count`-th event; returns every item read. */
function takeEvents(items: AsyncIterableIterator<Item>, count: number): Promise<Item[]> {
  return takeUntil(items, count, isEvent, timeoutMs);
}

/**
 * Proves nothing else is queued before the next live event: appends one
 * event and checks it is the very next thing the watch sends.
 */
async function expectNothingBut(source: MemorySource, items: AsyncIterableIterator<Item>) {
  const [sentinel] = source.append(1);
  expect((await next(items)).event).toEqual(sentinel);
}

/** Resolves once `condition` holds (checked every few ms), or fails after the timeout. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("parseResumeCursor", () => {
  it("reads an empty cursor as 'from now'", () => {
    expect(parseResumeCursor("")).toBeUndefined();
  });

  it("reads digits as a cursor, up to the largest int64", () => {
    expect(parseResumeCursor("0")).toBe(0n);
    expect(parseResumeCursor("42")).toBe(42n);
    expect(parseResumeCursor("007")).toBe(7n);
    expect(parseResumeCursor("9223372036854775807")).toBe(9223372036854775807n);
  });

  it.each(["abc", "-1", "+1", "1.5", "1e3", " 1", "1 ", "0x1f", "１２", "12345678901234567890"])(
    "rejects %j",
    (raw) => {
      let error: unknown;
      try {
        parseResumeCursor(raw);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InvalidArgumentError);
      const { violations } = error as InvalidArgumentError;
      expect(violations).toHaveLength(1);
      expect(violations[0]?.field).toBe("resume_cursor");
      expect(violations[0]?.description).toContain(`got "${raw}"`);
    },
  );

  it("quotes at most 40 characters of a long bad cursor, and names the field it is given", () => {
    const raw = "9".repeat(1000);
    let error: InvalidArgumentError | undefined;
    try {
      parseResumeCursor(raw, "after");
    } catch (e) {
      error = e as InvalidArgumentError;
    }
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error?.violations[0]?.field).toBe("after");
    expect(error?.message).toContain(`got "${"9".repeat(40)}"`);
    expect(error?.message).not.toContain("9".repeat(41));
  });
});

describe("EventFeed", () => {
  it("starts at the source's head and subscribes to wake-ups", async () => {
    const source = new MemorySource(3);
    const { feed } = await startFeed(source);
    expect(feed.latestCursor).toBe(3n);
    expect(source.subscriptions).toBe(1);
  });

  it("sends a heartbeat with the starting cursor first", async () => {
    const { feed } = await startFeed(new MemorySource(7));
    expect(await next(watch(feed).items)).toEqual({ heartbeat: 7n });

    const empty = await startFeed(new MemorySource());
    expect(await next(watch(empty.feed).items)).toEqual({ heartbeat: 0n });
  });

  it("streams live events in order, with nothing in between", async () => {
    const source = new MemorySource(2);
    const { feed } = await startFeed(source);
    const { items } = watch(feed);
    expect(await next(items)).toEqual({ heartbeat: 2n });

    const added = [...source.append(3), ...source.append(1), ...source.append(2)];
    const taken = await takeEvents(items, 6);
    expect(taken.every(isEvent)).toBe(true);
    expect(taken.map((item) => item.event)).toEqual(added);
    expect(cursors(taken)).toEqual(range(3, 8));
    await expectNothingBut(source, items);
  });

  it("fans every event out to every watcher", async () => {
    const source = new MemorySource();
    const { feed } = await startFeed(source);
    const watchers = Array.from({ length: 5 }, () => watch(feed).items);
    for (const items of watchers) expect(await next(items)).toEqual({ heartbeat: 0n });

    source.append(10);
    for (const items of watchers) {
      expect(cursors(await takeEvents(items, 10))).toEqual(range(1, 10));
    }
  });

  it("resumes after a cursor with no gap and no duplicate", async () => {
    const source = new MemorySource(10);
    const { feed } = await startFeed(source);
    const { items } = watch(feed, { after: 4n });
    expect(await next(items)).toEqual({ heartbeat: 4n });
    const taken = await takeEvents(items, 6);
    expect(taken.every(isEvent)).toBe(true);
    expect(cursors(taken)).toEqual(range(5, 10));
    await expectNothingBut(source, items);
  });

  it("resumes at the head with only new events", async () => {
    const source = new MemorySource(10);
    const { feed } = await startFeed(source);
    const { items } = watch(feed, { after: 10n });
    expect(await next(items)).toEqual({ heartbeat: 10n });
    await expectNothingBut(source, items);
  });

  it("serves a resume within the buffer from memory, without reading the source", async () => {
    const source = new MemorySource();
    const { feed } = await startFeed(source);
    source.append(10);
    await feed.caughtUp();
    expect(feed.latestCursor).toBe(10n);

    const readsBefore = source.reads.length;
    const { items } = watch(feed, { after: 3n });
    expect(await next(items)).toEqual({ heartbeat: 3n });
    expect(cursors(await takeEvents(items, 7))).toEqual(range(4, 10));
    expect(source.reads.slice(readsBefore)).toEqual([]);
  });

  describe("with a buffer of 4 after 20 live events", () => {
    async function feedWith20Events() {
      const source = new MemorySource();
      const started = await startFeed(source, { bufferSize: 4, batchSize: 3 });
      for (let i = 0; i < 20; i++) source.append(1);
      await started.feed.caughtUp();
      expect(started.feed.latestCursor).toBe(20n);
      return { source, ...started };
    }

    it.each([0, 1, 5, 14, 15, 16, 17, 19, 20])(
      "a watch resuming after %i gets every later event exactly once, in order",
      async (after) => {
        const { source, feed } = await feedWith20Events();
        const readsBefore = source.reads.length;
        const { items } = watch(feed, { after: BigInt(after) });
        expect(await next(items)).toEqual({ heartbeat: BigInt(after) });
        const taken = after < 20 ? await takeEvents(items, 20 - after) : [];
        expect(taken.every(isEvent)).toBe(true);
        expect(cursors(taken)).toEqual(range(after + 1, 20));
        // Only cursors behind the buffer (which holds 17..20) need the source.
        const watcherReads = source.reads.slice(readsBefore);
        if (after < 16) expect(watcherReads).toContain(BigInt(after));
        else expect(watcherReads).toEqual([]);
        await expectNothingBut(source, items);
      },
    );
  });

  it("replays history written before the feed started from the source", async () => {
    const source = new MemorySource(20);
    const { feed } = await startFeed(source, { bufferSize: 4, batchSize: 3 });
    const { items } = watch(feed, { after: 0n });
    expect(await next(items)).toEqual({ heartbeat: 0n });
    source.append(2);
    const taken = await takeEvents(items, 22);
    expect(taken.every(isEvent)).toBe(true);
    expect(cursors(taken)).toEqual(range(1, 22));
    await expectNothingBut(source, items);
  });

  it("skips ahead instead of spinning when old events were purged from the source", async () => {
    const source = new MemorySource(10);
    const { feed } = await startFeed(source, { bufferSize: 4 });
    source.events.splice(0, 10);
    const { items } = watch(feed, { after: 3n });
    expect(await next(items)).toEqual({ heartbeat: 3n });
    const pending = items.next();
    await until(() => source.reads.includes(3n), "the watch reads the source");
    await new Promise((resolve) => setTimeout(resolve, 20));
    // One read found nothing after 3; it did not keep asking.
    expect(source.reads.filter((after) => after === 3n)).toHaveLength(1);
    const [sentinel] = source.append(1);
    expect((await pending).value).toEqual({ event: sentinel });
  });

  it("gives a slow consumer every event in order once it reads again", async () => {
    const source = new MemorySource();
    const { feed } = await startFeed(source, { bufferSize: 4, batchSize: 8 });
    const { items } = watch(feed);
    expect(await next(items)).toEqual({ heartbeat: 0n });

    // The consumer reads one event of a batch of three, then stops reading...
    source.append(3);
    expect((await next(items)).event?.cursor).toBe(1n);
    // ...while 50 more are written, far more than the buffer holds.
    for (let i = 0; i < 50; i++) source.append(1);
    await feed.caughtUp();
    expect(feed.latestCursor).toBe(53n);

    const taken = await takeEvents(items, 52);
    expect(taken.every(isEvent)).toBe(true);
    expect(cursors(taken)).toEqual(range(2, 53));
    await expectNothingBut(source, items);
  });

  it("gives a consumer that stopped right after its first heartbeat all 50 events", async () => {
    const source = new MemorySource(5);
    const { feed } = await startFeed(source, { bufferSize: 4 });
    const { items } = watch(feed);
    expect(await next(items)).toEqual({ heartbeat: 5n });
    for (let i = 0; i < 50; i++) source.append(1);
    await feed.caughtUp();
    expect(cursors(await takeEvents(items, 50))).toEqual(range(6, 55));
    await expectNothingBut(source, items);
  });

  it("skips filtered events but advances the cursor its heartbeats carry", async () => {
    const source = new MemorySource();
    const { feed } = await startFeed(source, { heartbeatMs: 50 });
    const { items } = watch(feed, { filter: (event) => event.cursor % 2n === 1n });
    expect(await next(items)).toEqual({ heartbeat: 0n });

    source.append(6);
    const taken = await takeUntil(items, 1, (item) => item.heartbeat === 6n, timeoutMs);
    expect(cursors(taken)).toEqual([1n, 3n, 5n]);
    // Any heartbeat before the events were read could only carry the old cursor.
    const beats = taken.filter(isHeartbeat).map((item) => item.heartbeat);
    expect(beats.slice(0, -1).every((cursor) => cursor === 0n)).toBe(true);

    // A watcher that filters out everything still learns where it can resume from.
    const none = watch(feed, { filter: () => false }).items;
    expect(await next(none)).toEqual({ heartbeat: 6n });
    source.append(3);
    await takeUntil(none, 1, (item) => item.heartbeat === 9n, timeoutMs);
  });

  it("refuses a cursor ahead of the source's head with INVALID_ARGUMENT", async () => {
    const source = new MemorySource(5);
    const { feed } = await startFeed(source);
    const { items } = watch(feed, { after: 6n });
    const error = await items.next().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).violations).toEqual([
      {
        field: "resume_cursor",
        description: "6 is ahead of the newest event (5); pass a cursor this service sent",
      },
    ]);
    // The generator is finished; the feed is not harmed.
    expect(await items.next()).toEqual({ done: true, value: undefined });
    expect(await next(watch(feed).items)).toEqual({ heartbeat: 5n });
  });

  it("accepts a cursor the feed has not seen yet if the source has it", async () => {
    const source = new MemorySource(5);
    const { feed } = await startFeed(source);
    // Committed, but the wake-up has not arrived.
    source.append(3, { wake: false });
    const { items } = watch(feed, { after: 7n });
    expect(await next(items)).toEqual({ heartbeat: 7n });
    expect((await next(items)).event?.cursor).toBe(8n);
    await expectNothingBut(source, items);
  });

  it("ends every watch after a final heartbeat when draining, without an error", async () => {
    const source = new MemorySource(3);
    const { feed, draining } = await startFeed(source);

    // One watch is waiting for events...
    const waiting = watch(feed).items;
    expect(await next(waiting)).toEqual({ heartbeat: 3n });
    const pending = waiting.next();
    // ...another has read one event of a batch of three and is not reading.
    const reading = watch(feed).items;
    expect(await next(reading)).toEqual({ heartbeat: 3n });
    source.append(3);
    expect((await next(reading)).event?.cursor).toBe(4n);
    // The waiting one has been woken by those events; let it read them all.
    expect((await pending).value).toMatchObject({ event: { cursor: 4n } });
    expect(cursors(await takeEvents(waiting, 2))).toEqual([5n, 6n]);
    const waitingNext = waiting.next();

    draining.abort();
    expect(await waitingNext).toEqual({ done: false, value: { heartbeat: 6n } });
    expect(await waiting.next()).toEqual({ done: true, value: undefined });
    // It stops at once, with a cursor just after the last event it sent.
    expect(await reading.next()).toEqual({ done: false, value: { heartbeat: 4n } });
    expect(await reading.next()).toEqual({ done: true, value: undefined });
    await until(() => source.unsubscribed === 1, "the feed unsubscribes from wake-ups");

    // A watch opened while draining ends at once too.
    const late = watch(feed).items;
    const rest: Item[] = [];
    for await (const item of late) rest.push(item);
    expect(rest).toEqual([{ heartbeat: 6n }, { heartbeat: 6n }]);
  });

  it("stops polling once drained", async () => {
    const source = new MemorySource();
    const { feed, draining } = await startFeed(source, { pollMs: 10 });
    await until(() => source.reads.length >= 2, "the feed polls");
    draining.abort();
    await feed.caughtUp();
    const reads = source.reads.length;
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(source.reads.length).toBe(reads);
  });

  it("ends a watch whose own signal is aborted, and only that one", async () => {
    const source = new MemorySource(1);
    const { feed } = await startFeed(source);
    const closing = watch(feed);
    const staying = watch(feed);
    expect(await next(closing.items)).toEqual({ heartbeat: 1n });
    expect(await next(staying.items)).toEqual({ heartbeat: 1n });

    const pending = closing.items.next();
    closing.close();
    // No final heartbeat: the client is gone.
    expect(await pending).toEqual({ done: true, value: undefined });

    source.append(1);
    expect((await next(staying.items)).event?.cursor).toBe(2n);
  });

  it("sends no final heartbeat when the client is gone as the server drains", async () => {
    const source = new MemorySource(2);
    const { feed, draining } = await startFeed(source);
    const { items, close } = watch(feed);
    expect(await next(items)).toEqual({ heartbeat: 2n });
    close();
    draining.abort();
    expect(await items.next()).toEqual({ done: true, value: undefined });
  });

  it("ends a watch aborted while its consumer is not reading", async () => {
    const source = new MemorySource();
    const { feed } = await startFeed(source);
    const { items, close } = watch(feed);
    expect(await next(items)).toEqual({ heartbeat: 0n });
    source.append(3);
    expect((await next(items)).event?.cursor).toBe(1n);
    close();
    expect(await items.next()).toEqual({ done: true, value: undefined });
  });

  it("sends heartbeats on a quiet stream every heartbeatMs, with the current cursor", async () => {
    const heartbeatMs = 50;
    const source = new MemorySource(4);
    const { feed } = await startFeed(source, { heartbeatMs });
    const { items } = watch(feed);
    expect(await next(items)).toEqual({ heartbeat: 4n });

    const started = Date.now();
    let last = started;
    for (let i = 0; i < 3; i++) {
      expect(await next(items)).toEqual({ heartbeat: 4n });
      const now = Date.now();
      // Allow for the millisecond granularity of the clock.
      expect(now - last).toBeGreaterThanOrEqual(heartbeatMs - 2);
      last = now;
    }
    // Not much later than due either (generous, for a loaded machine).
    expect(last - started).toBeLessThan(3 * heartbeatMs * 2.5);

    source.append(2);
    const taken = await takeUntil(items, 1, (item) => item.heartbeat === 6n, timeoutMs);
    expect(cursors(taken)).toEqual([5n, 6n]);
  });

  it("reads again after a wake-up that arrived while it was reading", async () => {
    const source = new MemorySource();
    // The safety poll is far off (5 s): only the wake-ups can deliver in time.
    const { feed } = await startFeed(source);
    const { items } = watch(feed);
    expect(await next(items)).toEqual({ heartbeat: 0n });

    const release = source.holdReads();
    source.append(1);
    await until(() => source.reads.length > 0, "the feed starts reading");
    // Committed after that read began, so the read cannot see it.
    source.append(1);
    release();
    expect(cursors(await takeEvents(items, 2))).toEqual([1n, 2n]);
  });

  it("picks up events written without a wake-up by its safety poll", async () => {
    const source = new MemorySource(2);
    const { feed } = await startFeed(source, { pollMs: 50 });
    const { items } = watch(feed);
    expect(await next(items)).toEqual({ heartbeat: 2n });
    source.append(3, { wake: false });
    const taken = await takeEvents(items, 3);
    expect(taken.every(isEvent)).toBe(true);
    expect(cursors(taken)).toEqual([3n, 4n, 5n]);
  });

  it("logs a failed read and recovers on the next poll", async () => {
    const source = new MemorySource();
    const { feed, logs } = await startFeed(source, { pollMs: 50 });
    const { items } = watch(feed);
    expect(await next(items)).toEqual({ heartbeat: 0n });

    source.failReads = 1;
    source.append(2);
    expect(cursors(await takeEvents(items, 2))).toEqual([1n, 2n]);
    const warnings = logs.records.filter((r) => r.msg === "event feed could not read new events");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, err: { message: "connection refused" } });
  });

  it("loses nothing when a wake-up arrives while it is starting", async () => {
    const source = new MemorySource(10);
    const wakeups: WakeupSubscription = async (onWake) => {
      const unsubscribe = await source.wakeups(onWake);
      // A notification for events already committed, delivered at once.
      onWake();
      return unsubscribe;
    };
    const { feed } = await startFeed(source, { wakeups, bufferSize: 4 });
    await feed.caughtUp();
    expect(feed.latestCursor).toBe(10n);

    const live = watch(feed).items;
    expect(await next(live)).toEqual({ heartbeat: 10n });
    const replay = watch(feed, { after: 0n }).items;
    expect(await next(replay)).toEqual({ heartbeat: 0n });
    source.append(6);
    expect(cursors(await takeEvents(live, 6))).toEqual(range(11, 16));
    expect(cursors(await takeEvents(replay, 16))).toEqual(range(1, 16));
    await expectNothingBut(source, live);
  });
});

describe("watchResponses", () => {
  it("maps events and heartbeats to the Watch response oneof", async () => {
    async function* items(): AsyncGenerator<Item> {
      yield { heartbeat: 12n };
      yield { event: { cursor: 13n, message: "created" } };
    }
    const before = Math.floor(Date.now() / 1000);
    const responses = [];
    for await (const response of watchResponses(items())) responses.push(response);

    expect(responses).toHaveLength(2);
    const [heartbeat, event] = responses;
    expect(heartbeat?.kind.case).toBe("heartbeat");
    if (heartbeat?.kind.case === "heartbeat") {
      expect(heartbeat.kind.value.cursor).toBe("12");
      expect(Number(heartbeat.kind.value.sendTime?.seconds)).toBeGreaterThanOrEqual(before);
    }
    expect(event).toEqual({ kind: { case: "event", value: "created" } });
  });
});
