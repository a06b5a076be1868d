/**
 * Section 2: CreateOrder end to end on PostgreSQL. Each call goes client →
 * order-service → user-service (GetUser) and payment-service (Charge), with
 * two transactions on orders and one on payments. A closed loop with growing
 * concurrency finds the most the system does; an open loop at 80% of that
 * shows the latencies of a system that keeps up. The CPU each process spends
 * per order, summed, bounds what any load can get out of this machine's cores.
 */
import { randomUUID } from "node:crypto";
import { availableParallelism } from "node:os";
import { OrderService, OrderStatus } from "@meridian/proto/meridian/order/v1/order_pb";
import { createTestClient } from "@meridian/testkit";
import { closedLoop, type LoopResult, openLoop } from "./loops.js";
import { startCpuMeter } from "./processes.js";
import { formatNumber, ms, percent, printTable, shownPath } from "./report.js";
import { type BenchSystem, startBenchSystem } from "./system.js";

export interface EndToEndRow extends LoopResult {
  load: string;
  /** Cores used per process while it ran. */
  cpu: Record<string, number>;
  /** Milliseconds of CPU per order placed, per process: cores × 1000 / orders per second. */
  cpuMsPerOrder: Record<string, number>;
}

/** The processes that are the system; the client is the bench itself. */
const systemProcesses = ["user", "order", "payment", "postgres"] as const;

/** CPU milliseconds per order of each process, and of the system (the services and PostgreSQL). */
function cpuPerOrder(cpu: Record<string, number>, ordersPerSecond: number) {
  const perOrder = Object.fromEntries(
    Object.entries(cpu).map(([name, cores]) => [name, (cores * 1000) / ordersPerSecond]),
  );
  perOrder.system = systemProcesses.reduce((sum, name) => sum + (perOrder[name] ?? Number.NaN), 0);
  return perOrder;
}

function measuredRow(load: string, result: LoopResult, cpu: Record<string, number>): EndToEndRow {
  return { load, ...result, cpu, cpuMsPerOrder: cpuPerOrder(cpu, result.throughput) };
}

/** Places one paid order (tok_visa, one mug); throws unless it ends PAID. */
export function orderPlacer(system: BenchSystem, userId: string, token: string) {
  const orders = createTestClient(OrderService, system.urls["order-service"], "grpc", token);
  return async () => {
    const { order } = await orders.createOrder({
      userId,
      items: [{ sku: "MUG-001", quantity: 1 }],
      idempotencyKey: randomUUID(),
      paymentToken: "tok_visa",
    });
    if (order?.status !== OrderStatus.PAID) {
      throw new Error(`order ended ${OrderStatus[order?.status ?? 0]}: ${order?.statusReason}`);
    }
  };
}

/** What each process of the system (and the bench itself, the client) uses. */
export function systemCpuMeter(system: BenchSystem) {
  return startCpuMeter({
    user: () => [system.pids["user-service"]],
    order: () => [system.pids["order-service"]],
    payment: () => [system.pids["payment-service"]],
    postgres: () => system.postgresBackends(),
    client: () => [process.pid],
  });
}

export async function benchEndToEnd({ quick }: { quick: boolean }) {
  const seconds = quick ? 1.5 : 5;
  const levels = quick ? [1, 4, 16] : [1, 2, 4, 8, 16, 32, 64, 128];
  const system = await startBenchSystem("e2e");
  try {
    const { userId, token } = await system.signUp();
    const placeOrder = orderPlacer(system, userId, token);
    // JIT, connection pools, token caches.
    await closedLoop(placeOrder, 4, quick ? 1 : 3);

    const rows: EndToEndRow[] = [];
    let best = 0;
    let levelsSinceBest = 0;
    for (const concurrency of levels) {
      const cpu = await systemCpuMeter(system);
      const result = await closedLoop(placeOrder, concurrency, seconds);
      rows.push(measuredRow(`closed, ${concurrency} in flight`, result, await cpu()));
      console.log(`  ${concurrency} in flight: ${formatNumber(result.throughput)} orders/s`);
      // Two levels in a row without 5% more throughput: past the knee.
      if (result.throughput > best * 1.05) levelsSinceBest = 0;
      else if (++levelsSinceBest === 2) break;
      best = Math.max(best, result.throughput);
    }
    // The knee: the closed-loop level that did the most.
    const knee = rows.reduce((a, b) => (b.throughput > a.throughput ? b : a));
    const rate = 0.8 * best;
    const cpu = await systemCpuMeter(system);
    const open = await openLoop(placeOrder, rate, seconds * 2);
    rows.push(measuredRow(`open, ${formatNumber(rate)}/s (80%)`, open, await cpu()));

    const processes = Object.keys(rows[0]?.cpu ?? {});
    printTable(
      "2. End to end: CreateOrder on PostgreSQL (order → user + payment), one client connection",
      ["load", "orders/s", "p50 ms", "p99 ms", "errors", ...processes.map((name) => `${name} CPU`)],
      rows.map((row) => [
        row.load,
        formatNumber(row.throughput),
        ms(row.latency.p50Ms),
        ms(row.latency.p99Ms),
        String(row.errors),
        ...processes.map((name) => percent(row.cpu[name] ?? Number.NaN)),
      ]),
      [
        `Closed loop: a fixed number of calls in flight, ${seconds} s each, until two steps in a row add less than 5%.`,
        `Open loop: calls started at 80% of the best closed-loop rate for ${seconds * 2} s, each timed from when it was due;`,
        `at most ${open.mostInFlight} were in flight at once.`,
        "CPU: share of one core used by each service, by the PostgreSQL backends serving their databases, and by this",
        `bench (the client). Service logs: ${shownPath(system.logDir)}/.`,
        ...rows.flatMap((row) => (row.firstError ? [`${row.load}: ${row.firstError}`] : [])),
      ],
    );

    // At the knee every order costs the system this much CPU; the cores have no more to give.
    const cores = availableParallelism();
    const systemMs = knee.cpuMsPerOrder.system ?? Number.NaN;
    const clientMs = knee.cpuMsPerOrder.client ?? Number.NaN;
    const bound = {
      load: knee.load,
      cores,
      systemCpuMsPerOrder: systemMs,
      maxOrdersPerSecond: (cores * 1000) / systemMs,
      maxWithClient: (cores * 1000) / (systemMs + clientMs),
    };
    const perOrderColumns = [...processes, "system"];
    printTable(
      "2b. CPU per order: milliseconds of CPU time each process spends per order placed",
      ["load", "orders/s", ...perOrderColumns.map((name) => `${name} ms`)],
      rows.map((row) => [
        row.load,
        formatNumber(row.throughput),
        ...perOrderColumns.map((name) => ms(row.cpuMsPerOrder[name] ?? Number.NaN)),
      ]),
      [
        "Each process's CPU share × 1000 / orders per second. system = user + order + payment + postgres (the bench's",
        "client is not part of the system, but shares the cores here).",
        `Bound: at the knee (${knee.load}) the system spends ${ms(systemMs)} ms of CPU per order, so ${cores} cores do at most ` +
          `${cores} × 1000 / ${ms(systemMs)} = ${formatNumber(bound.maxOrdersPerSecond)} orders/s ` +
          `(${formatNumber(bound.maxWithClient)}/s with this client on the same cores).`,
      ],
    );
    return { maxThroughput: best, rows, bound };
  } finally {
    await system.stop();
  }
}
