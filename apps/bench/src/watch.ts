/**
 * Section 3: WatchOrders fan-out. Many streams watch one user's orders
 * (a customer's watch shows only their own orders, so they all use one
 * token) while orders are placed at a steady rate; every event reaches
 * every watcher. Delivery latency runs from the event's occur_time (set by
 * PostgreSQL in the transaction that commits it, to the millisecond) to its
 * arrival at the watcher, on the same clock.
 */
import { setMaxListeners } from "node:events";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import {
  OrderService,
  WatchOrdersRequestSchema,
  WatchOrdersResponseSchema,
} from "@meridian/proto/meridian/order/v1/order_pb";
import { orderPlacer } from "./e2e.js";
import { openLoop } from "./loops.js";
import { rssBytes, startCpuMeter } from "./processes.js";
import { rawServerStream, rawStreamSessions } from "./raw-watch.js";
import {
  formatNumber,
  mebibytes,
  ms,
  percent,
  printTable,
  shownPath,
  summarize,
} from "./report.js";
import { startBenchSystem } from "./system.js";

export interface WatchSettings {
  quick: boolean;
  watchers: number;
  /** Orders placed per second while they watch. */
  ordersPerSecond: number;
}

/** Streams per client connection: gRPC clients commonly assume 100 (HTTP/2's usual limit). */
const streamsPerConnection = 100;
/** Each paid order is two events: CREATED, then STATUS_CHANGED to PAID. */
const eventsPerOrder = 2;

export async function benchWatch(settings: WatchSettings) {
  const { watchers, ordersPerSecond } = settings;
  const seconds = settings.quick ? 3 : 10;
  const system = await startBenchSystem("watch");
  const orderService = system.pids["order-service"];
  const stopWatching = new AbortController();
  // Every watch listens to it: thousands of listeners are intended.
  setMaxListeners(0, stopWatching.signal);
  try {
    const { userId, token } = await system.signUp();
    const placeOrder = orderPlacer(system, userId, token);
    // Warm the order path up before measuring memory, so that the growth
    // below is the watchers' and not the first orders'.
    for (let i = 0; i < 20; i++) await placeOrder();
    await settle();
    const rssBefore = rssBytes(orderService);

    const connections = Math.ceil(watchers / streamsPerConnection);
    const sessions = rawStreamSessions(system.urls["order-service"], connections);
    const watchPath = `/${OrderService.typeName}/${OrderService.method.watchOrders.name}`;
    const watchRequest = toBinary(WatchOrdersRequestSchema, create(WatchOrdersRequestSchema));
    const latencies: number[] = [];
    /** Cursors of the events seen: every watcher should see every one. */
    const events = new Set<string>();
    let live = 0;
    let streamErrors = 0;
    let firstStreamError: string | undefined;
    let everyoneLive: () => void = () => {};
    const allLive = new Promise<void>((resolve) => {
      everyoneLive = resolve;
    });
    const onMessage = (bytes: Uint8Array) => {
      const arrived = performance.timeOrigin + performance.now();
      const { kind } = fromBinary(WatchOrdersResponseSchema, bytes);
      if (kind.case === "event" && kind.value.occurTime !== undefined) {
        events.add(kind.value.cursor);
        latencies.push(arrived - timestampMs(kind.value.occurTime));
      } else if (kind.case === "heartbeat" && ++live === watchers) {
        // The first message of every watch is a heartbeat: it is live.
        everyoneLive();
      }
    };
    const watch = async (session: (typeof sessions)[number]) => {
      const status = await rawServerStream(
        session,
        watchPath,
        { authorization: `Bearer ${token}` },
        watchRequest,
        onMessage,
        stopWatching.signal,
      );
      if (status === "aborted") return;
      streamErrors++;
      firstStreamError ??= `a watch ended with grpc-status ${status}`;
    };
    const opening = performance.now();
    const streams = Array.from({ length: watchers }, (_, i) =>
      watch(sessions[i % connections] as (typeof sessions)[number]),
    );
    await withTimeout(
      allLive,
      120_000,
      () => `only ${live} of ${watchers} watches started (${firstStreamError ?? "no error"})`,
    );
    const openSeconds = (performance.now() - opening) / 1000;
    console.log(`  ${watchers} watches live after ${openSeconds.toFixed(1)} s`);
    await settle();
    const rssWatching = rssBytes(orderService);

    let rssPeak = rssWatching;
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, rssBytes(orderService));
    }, 200);
    const cpu = await startCpuMeter({
      "order-service": () => [orderService],
      client: () => [process.pid],
    });
    const placing = await openLoop(placeOrder, ordersPerSecond, seconds);
    // The last events are still on their way to some watchers.
    const drainUntil = performance.now() + 60_000;
    while (
      latencies.length < watchers * events.size &&
      performance.now() < drainUntil &&
      streamErrors === 0
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const expected = watchers * events.size;
    const used = await cpu();
    clearInterval(sampler);

    const delivery = summarize(latencies);
    const result = {
      watchers,
      connections,
      openSeconds,
      ordersPerSecond,
      orders: placing.latency.count,
      orderErrors: placing.errors,
      events: events.size,
      deliveries: delivery.count,
      expectedDeliveries: expected,
      streamErrors,
      delivery,
      rssBefore,
      rssWatching,
      rssPeak,
      cpu: used,
    };
    printTable(
      `3. Watch fan-out: ${formatNumber(watchers)} WatchOrders streams, ${ordersPerSecond} orders/s for ${seconds} s (PostgreSQL)`,
      ["measure", "value"],
      [
        ["watch streams (connections)", `${formatNumber(watchers)} (${connections})`],
        ["time until all live", `${openSeconds.toFixed(1)} s`],
        ["orders paid (failed)", `${result.orders} (${placing.errors})`],
        [
          "events delivered / expected",
          `${formatNumber(delivery.count)} / ${formatNumber(expected)}`,
        ],
        ["delivery latency p50", `${ms(delivery.p50Ms)} ms`],
        ["delivery latency p99", `${ms(delivery.p99Ms)} ms`],
        ["delivery latency max", `${ms(delivery.maxMs)} ms`],
        ["order-service RSS before", mebibytes(rssBefore)],
        ["order-service RSS, watches idle", mebibytes(rssWatching)],
        ["order-service RSS, peak under events", mebibytes(rssPeak)],
        ["per watch stream", `${formatNumber((rssWatching - rssBefore) / watchers / 1024, 1)} KiB`],
        ["order-service CPU", percent(used["order-service"] ?? Number.NaN)],
        ["client CPU (this bench)", percent(used.client ?? Number.NaN)],
      ],
      [
        "Latency: event occur_time (PostgreSQL's clock at the writing transaction, ms) to arrival at each watcher.",
        `Expected: every watcher gets every event any watcher got (${events.size} events; a paid order makes ${eventsPerOrder}).`,
        ...(placing.firstError
          ? [
              `orders failed: ${placing.errors}, first: ${placing.firstError} (service logs: ${shownPath(system.logDir)}/)`,
            ]
          : []),
        ...(firstStreamError ? [`stream errors: ${streamErrors}, first: ${firstStreamError}`] : []),
      ],
    );
    stopWatching.abort();
    await Promise.all(streams);
    for (const session of sessions) session.close();
    return result;
  } finally {
    stopWatching.abort();
    await system.stop();
  }
}

/** Lets timers, sockets and the garbage collector catch up before reading memory. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 1500));

async function withTimeout(promise: Promise<void>, timeoutMs: number, message: () => string) {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message())), timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
}
