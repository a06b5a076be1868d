import { randomUUID } from "node:crypto";
import type { Client } from "@connectrpc/connect";
import { Code } from "@connectrpc/connect";
import {
  PaymentEventType,
  type PaymentService,
  type WatchPaymentsRequest,
  type WatchPaymentsResponse,
} from "@meridian/proto/meridian/payment/v1/payment_pb";
import { callError, type TestDatabase, takeUntil, testDatabaseKinds } from "@meridian/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { newCharge, type ServiceUnderTest, startForTest } from "./harness.js";

const databaseKinds = await testDatabaseKinds();
const isEvent = (r: WatchPaymentsResponse) => r.kind.case === "event";
const isHeartbeat = (r: WatchPaymentsResponse) => r.kind.case === "heartbeat";
const cursorOf = (r: WatchPaymentsResponse) => BigInt(r.kind.value?.cursor ?? "-1");
const eventOf = (r: WatchPaymentsResponse | undefined) =>
  r?.kind.case === "event" ? r.kind.value : undefined;

describe.each(databaseKinds)("WatchPayments on $name", (kind) => {
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

  /** Opens a watch and reads its first message (always a heartbeat). */
  async function openWatch(
    request: Partial<Pick<WatchPaymentsRequest, "resumeCursor" | "orderId" | "userId">> = {},
    client: Client<typeof PaymentService> = service.client(),
  ) {
    const abort = new AbortController();
    cleanups.push(() => abort.abort());
    const stream = client.watchPayments(request, { signal: abort.signal })[Symbol.asyncIterator]();
    const [first] = await takeUntil(stream, 1);
    expect(first?.kind.case).toBe("heartbeat");
    return { stream, start: first?.kind.value?.cursor ?? "" };
  }

  it("streams each change in order: succeeded, declined, refunded", async () => {
    const userId = randomUUID();
    const watch = await openWatch({ userId });
    const { payment } = await service.client().charge(newCharge({ userId }));
    await service.client().charge(newCharge({ userId, paymentToken: "tok_declined" }));
    await service.client().refund({
      paymentId: payment?.id,
      idempotencyKey: randomUUID(),
      reason: "returned",
    });

    const events = (await takeUntil(watch.stream, 3, isEvent)).filter(isEvent);
    expect(events.map((e) => eventOf(e)?.type)).toEqual([
      PaymentEventType.SUCCEEDED,
      PaymentEventType.DECLINED,
      PaymentEventType.REFUNDED,
    ]);
    expect(eventOf(events[2])?.payment?.id).toBe(payment?.id);
    expect(eventOf(events[2])?.payment?.refundedAmount?.minorUnits).toBe(1999n);
    const cursors = events.map(cursorOf);
    expect(cursors[0]).toBeGreaterThan(BigInt(watch.start));
    expect([...cursors].sort((a, b) => (a < b ? -1 : 1))).toEqual(cursors);
    expect(new Set(cursors).size).toBe(3);
  });

  it("resumes after any cursor with no gap and no duplicate", async () => {
    const userId = randomUUID();
    const watch = await openWatch({ userId });
    for (let i = 0; i < 5; i++) await service.client().charge(newCharge({ userId }));
    const all = (await takeUntil(watch.stream, 5, isEvent)).filter(isEvent);

    const resumed = await openWatch({ userId, resumeCursor: all[1]?.kind.value?.cursor });
    // Three events, then the stream goes quiet: the next message is a heartbeat.
    const rest = await takeUntil(resumed.stream, 1, isHeartbeat);
    expect(rest.filter(isEvent).map(cursorOf)).toEqual(all.slice(2).map(cursorOf));
  });

  it("sends only the events of the order or user watched", async () => {
    const orderId = randomUUID();
    const byOrder = await openWatch({ orderId });
    await service.client().charge(newCharge());
    const { payment } = await service.client().charge(newCharge({ orderId }));
    await service.client().charge(newCharge());
    const [event] = (await takeUntil(byOrder.stream, 1, isEvent)).filter(isEvent);
    expect(eventOf(event)?.payment?.id).toBe(payment?.id);
    const quiet = await takeUntil(byOrder.stream, 1, isHeartbeat);
    expect(quiet.filter(isEvent)).toEqual([]);
  });

  it("shows a customer only their own payments, and refuses to show them anyone else's", async () => {
    const alice = randomUUID();
    const asAlice = await service.asUser(alice);
    const watch = await openWatch({}, asAlice);
    await service.client().charge(newCharge());
    const { payment } = await service.client().charge(newCharge({ userId: alice }));
    await service.client().charge(newCharge());
    const events = (await takeUntil(watch.stream, 1, isHeartbeat)).filter(isEvent);
    expect(events.map((e) => eventOf(e)?.payment?.id)).toEqual([payment?.id]);

    // Replaying all history shows them the same: their payment and nothing else.
    const replay = await openWatch({ resumeCursor: "0" }, asAlice);
    const history = (await takeUntil(replay.stream, 1, isHeartbeat)).filter(isEvent);
    expect(history.map((e) => eventOf(e)?.payment?.userId)).toEqual([alice]);

    const bob = randomUUID();
    const stream = asAlice.watchPayments({ userId: bob })[Symbol.asyncIterator]();
    const error = await callError(stream.next());
    expect(error.code).toBe(Code.PermissionDenied);
    expect(error.rawMessage).toBe(`user ${alice} may not watch payments of user ${bob}`);
  });

  it("streams over the Connect protocol with JSON on HTTP/1.1 too", async () => {
    const userId = randomUUID();
    const watch = await openWatch({ userId }, service.client("connect-json"));
    const { payment } = await service.client().charge(newCharge({ userId }));
    const [event] = (await takeUntil(watch.stream, 1, isEvent)).filter(isEvent);
    expect(eventOf(event)?.payment).toEqual(payment);
  });

  it("rejects malformed cursors and filters with INVALID_ARGUMENT", async () => {
    for (const request of [{ resumeCursor: "abc" }, { resumeCursor: "99999999999999" }]) {
      const stream = service.client().watchPayments(request)[Symbol.asyncIterator]();
      const error = await callError(stream.next());
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toMatch(/^resume_cursor: /);
    }
    const stream = service.client().watchPayments({ orderId: "42" })[Symbol.asyncIterator]();
    const error = await callError(stream.next());
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe('order_id: must be an order id (a UUID), got "42"');
  });
});
