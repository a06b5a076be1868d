/**
 * OrderRepository on a real database: the SQL statements of CreateOrder
 * return exactly what Prisma's model returns, a transition happens once, and
 * every change commits with its event.
 */
import { fileURLToPath } from "node:url";
import { type Database, outboxSource } from "@meridian/platform";
import { OrderEventType, OrderStatus } from "@meridian/proto/meridian/order/v1/order_pb";
import {
  type OpenTestDatabase,
  openTestDatabase,
  rowHeldBeforeOutboxLock,
  testDatabaseKinds,
} from "@meridian/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fingerprint, type OrderRequest, priceItems } from "../src/domain.js";
import { type Prisma, PrismaClient } from "../src/generated/prisma/client.js";
import {
  OrderRepository,
  orderColumns,
  orderEventsChannel,
  orderEventTable,
} from "../src/repository.js";

const databaseKinds = await testDatabaseKinds();
const migrationsDir = fileURLToPath(new URL("../prisma/migrations", import.meta.url));

describe.each(databaseKinds)("OrderRepository on $name", (kind) => {
  let opened: OpenTestDatabase;
  let database: Database;
  let prisma: PrismaClient;
  let orders: OrderRepository;
  beforeAll(async () => {
    opened = await openTestDatabase(kind, migrationsDir);
    database = opened.database;
    prisma = new PrismaClient({ adapter: database.adapter });
    orders = new OrderRepository(prisma);
  });
  afterAll(async () => {
    await prisma?.$disconnect();
    await opened?.close();
  });

  const newRequest = (): OrderRequest => ({
    userId: crypto.randomUUID(),
    items: [{ sku: "MUG-001", quantity: 2 }],
    idempotencyKey: crypto.randomUUID(),
    paymentToken: "tok_visa",
  });
  async function placePending(request = newRequest()) {
    const stored = await orders.createPending(
      request,
      priceItems(request.items),
      fingerprint(request),
    );
    if (stored === undefined) throw new Error("the order was not recorded");
    return stored;
  }
  const eventsOf = async (orderId: string) =>
    (await orders.events.readAfter(0n, 1000)).filter((e) => e.message.order?.id === orderId);

  it("selects every column of an order as Prisma's model reads it", async () => {
    const { order } = await placePending();
    await orders.transition(order.id, OrderStatus.PENDING, OrderStatus.PAID, {
      paymentId: crypto.randomUUID(),
      statusReason: "a reason",
    });
    const [raw] = await prisma.$queryRaw<unknown[]>`
      SELECT ${orderColumns} FROM orders WHERE id = ${order.id}::uuid`;
    expect(raw).toEqual(await prisma.order.findUnique({ where: { id: order.id } }));
  });

  it("reads events for the watch feed as Prisma's model reads them", async () => {
    await placePending();
    const asModel = outboxSource(prisma.orderEvent, (row) => row);
    const asSql = outboxSource(orderEventTable(prisma), (row) => row);
    const rows = await asSql.readAfter(0n, 1000);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows).toEqual(await asModel.readAfter(0n, 1000));
    expect(await asSql.readAfter(rows[0]?.cursor ?? 0n, 1)).toEqual(rows.slice(1, 2));
  });

  it("records a PENDING order with its CREATED event, and finds it by key", async () => {
    const request = newRequest();
    const stored = await placePending(request);
    expect(stored.order.status).toBe(OrderStatus.PENDING);
    expect(stored.order.total?.minorUnits).toBe(24_00n);
    expect(stored.fingerprint).toBe(fingerprint(request));
    expect(stored.paymentToken).toBe("tok_visa");
    expect(await orders.findByKey(request.userId, request.idempotencyKey)).toEqual(stored);
    expect(await orders.get(stored.order.id)).toEqual(stored);
    const events = await eventsOf(stored.order.id);
    expect(events.map((e) => e.message.type)).toEqual([OrderEventType.CREATED]);
    expect(events[0]?.message.order).toEqual(stored.order);
  });

  it("finds nothing for an unknown key, and records a key only once", async () => {
    const request = newRequest();
    expect(await orders.findByKey(request.userId, request.idempotencyKey)).toBeUndefined();
    await placePending(request);
    const again = await orders.createPending(request, priceItems(request.items), "other");
    expect(again).toBeUndefined();
  });

  it("moves an order once, with one event carrying the order as it now is", async () => {
    const { order } = await placePending();
    const paymentId = crypto.randomUUID();
    const paid = await orders.transition(order.id, OrderStatus.PENDING, OrderStatus.PAID, {
      paymentId,
      statusReason: "",
    });
    expect(paid.order).toMatchObject({ id: order.id, status: OrderStatus.PAID, paymentId });
    expect(await orders.get(order.id)).toEqual(paid);
    const events = await eventsOf(order.id);
    expect(events.map((e) => e.message.type)).toEqual([
      OrderEventType.CREATED,
      OrderEventType.STATUS_CHANGED,
    ]);
    expect(events[1]?.message.order).toEqual(paid.order);
  });

  it("changes nothing, writes no event and returns the order as it is when it has moved on", async () => {
    const { order } = await placePending();
    const paid = await orders.transition(order.id, OrderStatus.PENDING, OrderStatus.PAID, {
      paymentId: crypto.randomUUID(),
    });
    const late = await orders.transition(
      order.id,
      OrderStatus.PENDING,
      OrderStatus.PAYMENT_FAILED,
      {
        statusReason: "payment declined: too late",
      },
    );
    expect(late).toEqual(paid);
    expect((await eventsOf(order.id)).map((e) => e.message.type)).toEqual([
      OrderEventType.CREATED,
      OrderEventType.STATUS_CHANGED,
    ]);
  });

  it("lets exactly one of concurrent transitions from one status happen", async () => {
    const { order } = await placePending();
    const targets = [OrderStatus.PAID, OrderStatus.PAYMENT_FAILED, OrderStatus.PAYMENT_UNCONFIRMED];
    const results = await Promise.all(
      targets.map((to) =>
        orders.transition(order.id, OrderStatus.PENDING, to, { statusReason: `to ${to}` }),
      ),
    );
    const final = await orders.get(order.id);
    for (const result of results) expect(result.order.status).toBe(final.order.status);
    const changes = (await eventsOf(order.id)).filter(
      (e) => e.message.type === OrderEventType.STATUS_CHANGED,
    );
    expect(changes.map((e) => e.message.order)).toEqual([final.order]);
  });

  // PGlite runs one transaction at a time, so only PostgreSQL can interleave these.
  it.skipIf(kind.name === "pglite")(
    "turns away a duplicate key without a deadlock while a transition holds the order",
    async () => {
      const request = newRequest();
      const { order } = await placePending(request);
      // As a transition of the order: its row, then the outbox lock.
      const transition = await rowHeldBeforeOutboxLock(
        (body) => prisma.$transaction(body, { timeout: 10_000 }),
        (tx: Prisma.TransactionClient) =>
          tx.$executeRaw`UPDATE orders SET status = 'PAID' WHERE id = ${order.id}::uuid`,
        orderEventsChannel,
      );
      const duplicate = orders.createPending(request, priceItems(request.items), "another try");
      // Long enough for the duplicate to reach the row the transition holds.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await transition.release();
      expect(await duplicate).toBeUndefined();
    },
  );

  it("keeps the status reason and payment id a transition does not change", async () => {
    const { order } = await placePending();
    const paymentId = crypto.randomUUID();
    await orders.transition(order.id, OrderStatus.PENDING, OrderStatus.PAID, {
      paymentId,
      statusReason: "paid",
    });
    const cancelled = await orders.transition(order.id, OrderStatus.PAID, OrderStatus.CANCELLED);
    expect(cancelled.order).toMatchObject({
      status: OrderStatus.CANCELLED,
      paymentId,
      statusReason: "paid",
    });
  });

  it("wakes listeners once a change commits, with its event already readable", async () => {
    const before = await orders.events.latestCursor();
    const seen: bigint[] = [];
    let woken: () => void = () => {};
    const wakeUp = new Promise<void>((resolve) => {
      woken = resolve;
    });
    const stop = await database.listen(orderEventsChannel, () => {
      void orders.events.latestCursor().then((cursor) => {
        seen.push(cursor);
        if (cursor > before) woken();
      });
    });
    try {
      const { order } = await placePending();
      await wakeUp;
      const [event] = await eventsOf(order.id);
      expect(seen.at(-1)).toBe(event?.cursor);
    } finally {
      await stop();
    }
  });
});
