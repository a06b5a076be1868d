/**
 * order-service on a real database and a real HTTP/2 port, with user-service
 * and payment-service faked in memory (createRouterTransport) so that each
 * payment outcome can be provoked and what order-service sent them observed.
 */

import { Code } from "@connectrpc/connect";
import { PreconditionFailureSchema } from "@meridian/proto/google/rpc/error_details_pb";
import { OrderStatus } from "@meridian/proto/meridian/order/v1/order_pb";
import { callError, type TestDatabase, testDatabaseKinds } from "@meridian/testkit";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type ServiceUnderTest, startForTest } from "./harness.js";

const databaseKinds = await testDatabaseKinds();

describe.each(databaseKinds)("OrderService on $name", (kind) => {
  let db: TestDatabase;
  let service: ServiceUnderTest;
  beforeAll(async () => {
    db = await kind.create();
    service = await startForTest(db);
  });
  afterAll(async () => {
    await service?.stop();
    await db?.drop();
  });
  beforeEach(() => {
    service.payments.behaviour = "normal";
  });

  interface OrderRequest {
    userId: string;
    items: { sku: string; quantity: number }[];
    idempotencyKey: string;
    paymentToken: string;
  }
  const orderFor = (userId: string, overrides: Partial<OrderRequest> = {}): OrderRequest => ({
    userId,
    items: [
      { sku: "MUG-001", quantity: 2 },
      { sku: "BOOK-005", quantity: 1 },
    ],
    idempotencyKey: crypto.randomUUID(),
    paymentToken: "tok_visa",
    ...overrides,
  });

  it("prices the items, charges once with a key derived from the order, and marks it PAID", async () => {
    const me = await service.customer();
    const { order } = await me.client.createOrder(orderFor(me.id));
    expect(order?.status).toBe(OrderStatus.PAID);
    expect(order?.total).toMatchObject({ currencyCode: "EUR", minorUnits: 2n * 12_00n + 42_00n });
    expect(order?.lineItems.map((l) => [l.sku, l.quantity, l.lineTotal?.minorUnits])).toEqual([
      ["MUG-001", 2, 24_00n],
      ["BOOK-005", 1, 42_00n],
    ]);
    const charge = service.payments.charges.find((c) => c.request.orderId === order?.id);
    expect(charge?.request.idempotencyKey).toBe(`order/${order?.id}/charge`);
    expect(charge?.request.amount?.minorUnits).toBe(66_00n);
    expect(order?.paymentId).toBe(
      service.payments.byKey.get(charge?.request.idempotencyKey ?? "")?.id,
    );
  });

  it("asks user-service as the user, and payment-service as itself", async () => {
    const me = await service.customer();
    const { order } = await me.client.createOrder(orderFor(me.id));
    const userCall = service.users.calls.findLast((c) => c.request.id === me.id);
    expect(userCall?.authorization).toBe(`Bearer ${me.token}`);
    const charge = service.payments.charges.find((c) => c.request.orderId === order?.id);
    const serviceToken = charge?.authorization?.replace(/^Bearer /, "") ?? "";
    const claims = JSON.parse(
      Buffer.from(serviceToken.split(".")[1] ?? "", "base64url").toString(),
    );
    expect(claims).toMatchObject({ iss: "order-service", sub: "order-service", aud: "meridian" });
  });

  it("returns the same order for a retried request and never charges twice", async () => {
    const me = await service.customer();
    const request = orderFor(me.id);
    const first = await me.client.createOrder(request);
    const retries = await Promise.all([1, 2, 3].map(() => me.client.createOrder(request)));
    for (const retry of retries) expect(retry.order?.id).toBe(first.order?.id);
    const charges = service.payments.charges.filter((c) => c.request.orderId === first.order?.id);
    expect(charges).toHaveLength(1);
  });

  it("collapses concurrent first attempts with one key into one order", async () => {
    const me = await service.customer();
    const request = orderFor(me.id);
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => me.client.createOrder(request)));
    expect(new Set(results.map((r) => r.order?.id)).size).toBe(1);
    const orderId = results[0]?.order?.id;
    expect(service.payments.byKey.get(`order/${orderId}/charge`)?.status).toBeDefined();
    const { orders } = await me.client.listOrders({});
    expect(orders.filter((o) => o.idempotencyKey === request.idempotencyKey)).toHaveLength(1);
  });

  it("refuses a key reused for a different order with FAILED_PRECONDITION", async () => {
    const me = await service.customer();
    const request = orderFor(me.id);
    await me.client.createOrder(request);
    const error = await callError(
      me.client.createOrder({ ...request, items: [{ sku: "TEE-002", quantity: 1 }] }),
    );
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toContain("was used for a different order");
    expect(error.findDetails(PreconditionFailureSchema)[0]?.violations[0]?.type).toBe(
      "IDEMPOTENCY_KEY_REUSED",
    );
  });

  it("marks a declined payment PAYMENT_FAILED with the reason", async () => {
    const me = await service.customer();
    const { order } = await me.client.createOrder(
      orderFor(me.id, { paymentToken: "tok_declined" }),
    );
    expect(order?.status).toBe(OrderStatus.PAYMENT_FAILED);
    expect(order?.statusReason).toBe("payment declined: the card was declined");
  });

  it("records PAYMENT_UNCONFIRMED when payment-service is down, and settles on retry without a second charge", async () => {
    const me = await service.customer();
    const request = orderFor(me.id);
    service.payments.behaviour = "unavailable";
    const { order } = await me.client.createOrder(request);
    expect(order?.status).toBe(OrderStatus.PAYMENT_UNCONFIRMED);
    expect(order?.statusReason).toContain("retry CreateOrder with the same idempotency key");

    service.payments.behaviour = "normal";
    const retried = await me.client.createOrder(request);
    expect(retried.order?.id).toBe(order?.id);
    expect(retried.order?.status).toBe(OrderStatus.PAID);
    const moved = [...service.payments.byKey.values()].filter((p) => p.orderId === order?.id);
    expect(moved).toHaveLength(1);
  });

  it("fails with DEADLINE_EXCEEDED within the caller's deadline when payment hangs, having given it less time", async () => {
    const me = await service.customer();
    const request = orderFor(me.id);
    service.payments.behaviour = "hang";
    const started = performance.now();
    const error = await callError(me.client.createOrder(request, { timeoutMs: 400 }));
    const elapsed = performance.now() - started;
    expect(error.code).toBe(Code.DeadlineExceeded);
    expect(elapsed).toBeLessThan(1500);
    const charge = service.payments.charges.findLast((c) => c.request.userId === me.id);
    expect(charge?.timeoutMs).toBeDefined();
    expect(charge?.timeoutMs).toBeLessThan(400);
    expect(charge?.timeoutMs).toBeGreaterThan(0);

    // The order says what happened, and a retry settles it.
    service.payments.behaviour = "normal";
    await expect
      // Written just after the caller's deadline; on a loaded machine that can take a while.
      .poll(async () => (await me.client.listOrders({})).orders[0]?.status, { timeout: 5000 })
      .toBe(OrderStatus.PAYMENT_UNCONFIRMED);
    const { order } = await me.client.createOrder(request);
    expect(order?.status).toBe(OrderStatus.PAID);
  });

  it("gives downstream calls the default deadline when the caller sets none", async () => {
    const me = await service.customer();
    await me.client.createOrder(orderFor(me.id));
    const charge = service.payments.charges.findLast((c) => c.request.userId === me.id);
    expect(charge?.timeoutMs).toBeGreaterThan(9_000);
    expect(charge?.timeoutMs).toBeLessThanOrEqual(10_000);
  });

  it("refuses an order for a user that does not exist", async () => {
    const adminToken = await service.adminToken();
    const error = await callError(
      service.client(adminToken).createOrder(orderFor(crypto.randomUUID())),
    );
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toMatch(/^user .* does not exist$/);
  });

  it("names every invalid field at once", async () => {
    const me = await service.customer();
    const error = await callError(
      me.client.createOrder({
        userId: me.id,
        items: [
          { sku: "NOPE", quantity: 1 },
          { sku: "MUG-001", quantity: 0 },
        ],
        idempotencyKey: "",
        paymentToken: "",
      }),
    );
    expect(error.code).toBe(Code.InvalidArgument);
    for (const field of ["items[0].sku", "items[1].quantity", "idempotency_key", "payment_token"]) {
      expect(error.rawMessage).toContain(field);
    }
    expect(service.payments.charges.some((c) => c.request.userId === me.id)).toBe(false);
  });

  it("authenticates every call and lets customers act only on their own orders", async () => {
    const me = await service.customer();
    const other = await service.customer();
    expect((await callError(service.client(null).createOrder(orderFor(me.id)))).code).toBe(
      Code.Unauthenticated,
    );
    expect((await callError(me.client.createOrder(orderFor(other.id)))).code).toBe(
      Code.PermissionDenied,
    );
    const { order } = await other.client.createOrder(orderFor(other.id));
    expect((await callError(me.client.getOrder({ id: order?.id ?? "" }))).code).toBe(
      Code.PermissionDenied,
    );
    expect((await callError(me.client.cancelOrder({ id: order?.id ?? "" }))).code).toBe(
      Code.PermissionDenied,
    );
    expect((await callError(me.client.listOrders({ userId: other.id }))).code).toBe(
      Code.PermissionDenied,
    );
    const mine = await me.client.listOrders({});
    expect(mine.orders.every((o) => o.userId === me.id)).toBe(true);
    const admin = service.client(await service.adminToken());
    expect((await admin.getOrder({ id: order?.id ?? "" })).order?.userId).toBe(other.id);
  });

  it("refunds a paid order on cancel, once, and cancelling twice is harmless", async () => {
    const me = await service.customer();
    const { order } = await me.client.createOrder(orderFor(me.id));
    const first = await me.client.cancelOrder({ id: order?.id ?? "", reason: "changed my mind" });
    expect(first.order?.status).toBe(OrderStatus.CANCELLED);
    const second = await me.client.cancelOrder({ id: order?.id ?? "" });
    expect(second.order?.status).toBe(OrderStatus.CANCELLED);
    const refunds = service.payments.refunds.filter(
      (r) => r.request.paymentId === order?.paymentId,
    );
    expect(refunds).toHaveLength(1);
    expect(refunds[0]?.request.idempotencyKey).toBe(`order/${order?.id}/refund`);
  });

  it("will not cancel an order whose payment is unconfirmed", async () => {
    const me = await service.customer();
    service.payments.behaviour = "unavailable";
    const { order } = await me.client.createOrder(orderFor(me.id));
    const error = await callError(me.client.cancelOrder({ id: order?.id ?? "" }));
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toContain("retry CreateOrder");
  });

  it("lists a customer's orders newest first, page by page", async () => {
    const me = await service.customer();
    const created: string[] = [];
    for (let i = 0; i < 5; i++) {
      created.push((await me.client.createOrder(orderFor(me.id))).order?.id ?? "");
    }
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await me.client.listOrders({ pageSize: 2, pageToken });
      seen.push(...page.orders.map((o) => o.id));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(seen).toEqual(created.reverse());
  });

  it("quotes a cart anew on every change over a bidirectional stream", async () => {
    const me = await service.customer();
    async function* changes() {
      yield { change: { case: "setItem" as const, value: { sku: "MUG-001", quantity: 2 } } };
      yield { change: { case: "setItem" as const, value: { sku: "NOPE", quantity: 1 } } };
      yield { change: { case: "setItem" as const, value: { sku: "TEE-002", quantity: 1 } } };
      yield { change: { case: "setItem" as const, value: { sku: "MUG-001", quantity: 0 } } };
      yield { change: { case: "clear" as const, value: true } };
    }
    const quotes = [];
    for await (const quote of me.client.quoteCart(changes())) quotes.push(quote);
    expect(quotes.map((q) => [q.revision, q.total?.minorUnits, q.problems.length])).toEqual([
      [1, 24_00n, 0],
      [2, 24_00n, 1],
      [3, 49_00n, 0],
      [4, 25_00n, 0],
      [5, 0n, 0],
    ]);
    expect(quotes[1]?.problems[0]?.message).toContain("not in the catalog");
  });

  describe("with a short default deadline", () => {
    let quickDb: TestDatabase;
    let quick: ServiceUnderTest;
    beforeAll(async () => {
      quickDb = await kind.create();
      quick = await startForTest(quickDb, { DEFAULT_DEADLINE_MS: "200" });
    });
    afterAll(async () => {
      await quick?.stop();
      await quickDb?.drop();
    });

    it("keeps a cart session open longer than the default deadline of unary calls", async () => {
      const me = await quick.customer();
      async function* slowChanges() {
        yield { change: { case: "setItem" as const, value: { sku: "MUG-001", quantity: 1 } } };
        await new Promise((resolve) => setTimeout(resolve, 500));
        yield { change: { case: "setItem" as const, value: { sku: "MUG-001", quantity: 2 } } };
      }
      const revisions: number[] = [];
      for await (const quote of me.client.quoteCart(slowChanges())) revisions.push(quote.revision);
      expect(revisions).toEqual([1, 2]);

      // A unary call still gets the default: payment hanging ends it at 200 ms.
      quick.payments.behaviour = "hang";
      const error = await callError(me.client.createOrder(orderFor(me.id)));
      expect(error.code).toBe(Code.DeadlineExceeded);
    });
  });
});
