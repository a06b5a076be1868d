/**
 * Resumable, gap-free watch streams over an outbox table.
 *
 * Each service writes an event row in the same transaction as the state
 * change it describes (see `writeToOutbox` in database.ts), with a cursor from a
 * sequence. Writers take a transaction-scoped lock first, so cursors become
 * visible in commit order: once cursor N is visible, every event before N is
 * too. That single rule is what makes "read everything after my cursor" a
 * gap-free resume, on PGlite and on PostgreSQL alike.
 *
 * One EventFeed per process reads new events once (woken by LISTEN/NOTIFY,
 * with a slow poll as a safety net) into a bounded in-memory buffer, and
 * fans them out to every watcher. A watcher behind the buffer (a resume from
 * an old cursor, or a slow client) reads from the table instead, in batches,
 * until it catches up. Nothing is dropped; a slow watcher only slows itself.
 */
import { setMaxListeners } from "node:events";
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import {
  type WatchHeartbeat,
  WatchHeartbeatSchema,
} from "@meridian/proto/meridian/common/v1/common_pb";
import { InvalidArgumentError } from "./errors.js";
import type { Logger } from "./logger.js";
import { sendShared } from "./shared-answers.js";

export interface FeedEvent {
  readonly cursor: bigint;
}

export interface EventSource<E extends FeedEvent> {
  /** Up to `limit` events with a cursor greater than `after`, in cursor order. */
  readAfter(after: bigint, limit: number): Promise<E[]>;
  /** The greatest cursor written so far, or 0n when there are no events. */
  latestCursor(): Promise<bigint>;
}

/** Registers a callback for "new events may have been committed"; returns an unsubscribe. */
export type WakeupSubscription = (onWake: () => void) => Promise<() => Promise<void>>;

export interface EventFeedOptions<E extends FeedEvent> {
  source: EventSource<E>;
  wakeups: WakeupSubscription;
  /** When aborted, every watch ends cleanly (after a last heartbeat) and the feed stops. */
  draining: AbortSignal;
  logger: Logger;
  /** A quiet watch sends a heartbeat this often. */
  heartbeatMs?: number;
  /** Re-read the table this often even without a wake-up, in case one was lost. */
  pollMs?: number;
  /** Events kept in memory for watchers that are keeping up. */
  bufferSize?: number;
  /** Rows per read from the table. */
  batchSize?: number;
}

export type WatchItem<E> =
  | { event: E; heartbeat?: undefined }
  | { event?: undefined; heartbeat: bigint };

export interface WatchOptions<E> {
  /** Resume after this cursor; undefined starts with the next event. */
  after?: bigint;
  /** The client went away. */
  signal: AbortSignal;
  /** Only events for which this returns true are sent; the cursor advances past the rest. */
  filter?: (event: E) => boolean;
}

/** Parses a watch request's resume_cursor: "" means "from now", else a non-negative integer. */
export function parseResumeCursor(raw: string, field = "resume_cursor"): bigint | undefined {
  if (raw === "") return undefined;
  if (!/^\d{1,19}$/.test(raw)) {
    throw InvalidArgumentError.field(
      field,
      `must be a cursor from an earlier event or heartbeat (digits only), got "${raw.slice(0, 40)}"`,
    );
  }
  return BigInt(raw);
}

const noop = () => {};

export class EventFeed<E extends FeedEvent> {
  private readonly heartbeatMs: number;
  private readonly bufferSize: number;
  private readonly batchSize: number;
  /** The greatest cursor read into the buffer. */
  private head = 0n;
  /** Every event with a cursor greater than `floor` and at most `head` is in `buffer`. */
  private floor = 0n;
  private buffer: E[] = [];
  private waiters = new Set<() => void>();
  private polling: Promise<void> | undefined;
  private pollAgain = false;
  private unsubscribe: (() => Promise<void>) | undefined;
  private pollTimer: NodeJS.Timeout | undefined;

  private constructor(private readonly options: EventFeedOptions<E>) {
    this.heartbeatMs = options.heartbeatMs ?? 15_000;
    this.bufferSize = options.bufferSize ?? 1024;
    this.batchSize = options.batchSize ?? 500;
  }

  static async start<E extends FeedEvent>(options: EventFeedOptions<E>): Promise<EventFeed<E>> {
    const feed = new EventFeed(options);
    // Every watch listens for draining: thousands of listeners are expected,
    // not a leak (Node warns past 10).
    setMaxListeners(0, options.draining);
    // Subscribe before reading the head, so that nothing committed in between is missed.
    feed.unsubscribe = await options.wakeups(() => feed.wake());
    feed.head = feed.floor = await options.source.latestCursor();
    feed.pollTimer = setInterval(() => feed.wake(), options.pollMs ?? 5_000).unref();
    options.draining.addEventListener("abort", () => void feed.stop(), { once: true });
    return feed;
  }

  /** The cursor of the newest event this feed has seen. */
  get latestCursor(): bigint {
    return this.head;
  }

  /** Reads newly committed events; call it whenever some may have been written. */
  wake(): void {
    if (this.polling) {
      this.pollAgain = true;
      return;
    }
    this.polling = this.pollLoop().finally(() => {
      this.polling = undefined;
    });
  }

  /** Resolves once events written before this call are visible to watchers. */
  async caughtUp(): Promise<void> {
    while (this.polling) await this.polling;
    this.wake();
    await this.polling;
  }

  /**
   * A watch: first a heartbeat (the watch is live, and from where it
   * resumes), then every event after it that passes the filter, with a
   * heartbeat whenever it has been quiet for heartbeatMs, until the caller
   * goes away or the server drains (then a last heartbeat to resume from).
   *
   * An iterator written out by hand rather than an async generator: with
   * thousands of watches, every event steps every one of them, and a
   * generator's machinery (and a timer and an abort listener per wait, as
   * this was first written) was most of the cost of a delivery. Here a step
   * is one promise, a wait is one more, the abort listener is set up once
   * per watch and the heartbeat timer once per quiet spell.
   */
  watch(options: WatchOptions<E>): AsyncIterableIterator<WatchItem<E>> {
    const { filter } = options;
    const stop = AbortSignal.any([options.signal, this.options.draining]);
    let position = options.after ?? this.head;
    let state: "new" | "live" | "ended" = "new";
    // Events to go through: the feed's buffer itself (from `index`), or a batch read from the table.
    let batch: readonly E[] = [];
    let index = 0;
    let resume = noop;
    const wake = () => resume();
    // Read on every step of every watcher: a flag, not AbortSignal's getter.
    let stopped = false;
    const onStop = () => {
      stopped = true;
      wake();
    };
    // The heartbeat timer is set once per quiet spell, not per event: when it
    // fires early because something was sent meanwhile, it is set again for
    // the rest of the spell.
    let heartbeatDue = false;
    let heartbeat: NodeJS.Timeout | undefined;
    let lastSent = 0;
    const heartbeatAfter = (ms: number) => {
      heartbeat = setTimeout(() => {
        const quietFor = Date.now() - lastSent;
        if (quietFor < this.heartbeatMs) return heartbeatAfter(this.heartbeatMs - quietFor);
        heartbeatDue = true;
        wake();
      }, ms);
    };
    const end = () => {
      state = "ended";
      clearTimeout(heartbeat);
      stop.removeEventListener("abort", onStop);
      this.waiters.delete(wake);
    };
    const item = (value: WatchItem<E>): IteratorResult<WatchItem<E>> => ({ done: false, value });
    const ended: IteratorReturnResult<undefined> = { done: true, value: undefined };

    const start = async (): Promise<IteratorResult<WatchItem<E>>> => {
      if (position > this.head) {
        await this.caughtUp();
        if (position > this.head) {
          end();
          throw InvalidArgumentError.field(
            "resume_cursor",
            `${position} is ahead of the newest event (${this.head}); pass a cursor this service sent`,
          );
        }
      }
      state = "live";
      lastSent = Date.now();
      heartbeatAfter(this.heartbeatMs);
      stopped = stop.aborted;
      stop.addEventListener("abort", onStop, { once: true });
      return item({ heartbeat: position });
    };

    const step = async (): Promise<IteratorResult<WatchItem<E>>> => {
      try {
        if (state === "new") return await start();
        while (state === "live") {
          if (stopped) {
            end();
            // Ending because the server drains: give the client a cursor to resume from.
            if (this.options.draining.aborted && !options.signal.aborted) {
              return item({ heartbeat: position });
            }
            break;
          }
          while (index < batch.length) {
            const event = batch[index++] as E;
            position = event.cursor;
            if (filter && !filter(event)) continue;
            lastSent = Date.now();
            return item({ event });
          }
          if (position < this.head) {
            if (position >= this.floor) {
              batch = this.buffer;
              index = this.bufferIndexAfter(position);
            } else {
              batch = await this.options.source.readAfter(position, this.batchSize);
              index = 0;
              // Only possible if rows were deleted under us; never spin on it.
              if (batch.length === 0) position = this.head;
            }
            continue;
          }
          if (heartbeatDue) {
            heartbeatDue = false;
            lastSent = Date.now();
            heartbeatAfter(this.heartbeatMs);
            return item({ heartbeat: position });
          }
          await new Promise<void>((resolve) => {
            resume = resolve;
            this.waiters.add(wake);
          });
        }
        return ended;
      } catch (error) {
        end();
        throw error;
      }
    };

    return {
      next: step,
      return: async () => {
        end();
        return ended;
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  private async stop(): Promise<void> {
    clearInterval(this.pollTimer);
    for (const wake of this.waiters) wake();
    await this.unsubscribe?.();
  }

  /** Where the buffered events after `position` begin (the buffer is in cursor order). */
  private bufferIndexAfter(position: bigint): number {
    // Most watchers are at the tail: search from the end.
    let index = this.buffer.length;
    while (index > 0 && (this.buffer[index - 1] as E).cursor > position) index--;
    return index;
  }

  private async pollLoop(): Promise<void> {
    do {
      this.pollAgain = false;
      try {
        for (;;) {
          const batch = await this.options.source.readAfter(this.head, this.batchSize);
          if (batch.length === 0) break;
          this.append(batch);
          if (batch.length < this.batchSize) break;
        }
      } catch (error) {
        // The database is unreachable; the next wake-up or poll tries again.
        this.options.logger.warn({ err: error }, "event feed could not read new events");
        return;
      }
    } while (this.pollAgain);
  }

  private append(batch: E[]): void {
    this.buffer.push(...batch);
    this.head = (batch[batch.length - 1] as E).cursor;
    const excess = this.buffer.length - this.bufferSize;
    if (excess > 0) {
      this.floor = (this.buffer[excess - 1] as E).cursor;
      this.buffer = this.buffer.slice(excess);
    }
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const wake of waiters) wake();
  }
}

/**
 * The response stream of a Watch RPC. Every Meridian watch response is
 * `oneof kind { <Service>Event event = 1; WatchHeartbeat heartbeat = 2; }`,
 * so one mapping serves all of them.
 */
const eventAnswers = new WeakMap<object, object>();

type WatchAnswer<M> =
  | { kind: { case: "event"; value: M } }
  | { kind: { case: "heartbeat"; value: WatchHeartbeat } };

export function watchResponses<M>(
  items: AsyncIterable<WatchItem<FeedEvent & { message: M }>>,
): AsyncIterableIterator<WatchAnswer<M>> {
  // An iterator, not an async generator: one less generator layer per
  // watcher per event (see stepInCall in call-context.ts).
  const iterator = items[Symbol.asyncIterator]();
  const answer = (
    step: IteratorResult<WatchItem<FeedEvent & { message: M }>>,
  ): IteratorResult<WatchAnswer<M>> => {
    if (step.done) return step;
    const item = step.value;
    if (item.event) {
      // Every live watcher sends the same event: one answer object for all,
      // which the direct gRPC path then encodes once.
      type EventAnswer = { kind: { case: "event"; value: M } };
      let shared = eventAnswers.get(item.event) as EventAnswer | undefined;
      if (shared === undefined) {
        const made: EventAnswer = { kind: { case: "event", value: item.event.message } };
        shared = sendShared(made);
        eventAnswers.set(item.event, made);
      }
      return { done: false, value: shared };
    }
    const heartbeat = create(WatchHeartbeatSchema, {
      sendTime: timestampNow(),
      cursor: item.heartbeat.toString(),
    });
    return { done: false, value: { kind: { case: "heartbeat", value: heartbeat } } };
  };
  return {
    next: () => iterator.next().then(answer),
    return: async (value?: unknown) => {
      await iterator.return?.(value);
      return { done: true, value: value as WatchAnswer<M> };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/** The two queries an outbox table answers for an EventFeed (a Prisma model delegate has them). */
export interface OutboxTable<R extends { cursor: bigint }> {
  findMany(args: {
    where: { cursor: { gt: bigint } };
    orderBy: { cursor: "asc" };
    take: number;
  }): PromiseLike<R[]>;
  findFirst(args: {
    orderBy: { cursor: "desc" };
    select: { cursor: true };
  }): PromiseLike<{ cursor: bigint } | null>;
}

/** An outbox table as an EventFeed's source, each row turned into the event watchers get. */
export function outboxSource<R extends { cursor: bigint }, E extends FeedEvent>(
  table: OutboxTable<R>,
  toEvent: (row: R) => E,
): EventSource<E> {
  return {
    async readAfter(after, limit) {
      const rows = await table.findMany({
        where: { cursor: { gt: after } },
        orderBy: { cursor: "asc" },
        take: limit,
      });
      return rows.map(toEvent);
    },
    async latestCursor() {
      const newest = await table.findFirst({
        orderBy: { cursor: "desc" },
        select: { cursor: true },
      });
      return newest?.cursor ?? 0n;
    },
  };
}
