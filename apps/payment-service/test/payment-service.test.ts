import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Code } from "@connectrpc/connect";
import {
  BadRequestSchema,
  PreconditionFailureSchema,
  ResourceInfoSchema,
} from "@meridian/proto/google/rpc/error_details_pb";
import {
  type Payment,
  PaymentEventType,
  PaymentStatus,
  type WatchPaymentsResponse,
} from "@meridian/proto/meridian/payment/v1/payment_pb";
import {
  callError,
  type Protocol,
  protocols,
  type TestDatabase,
  takeUntil,
  testDatabaseKinds,
} from "@meridian/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newCharge, type ServiceUnderTest, startForTest, testSlowMs } from "./harness.js";

const databaseKinds = await testDatabaseKinds();

function fieldViolations(error: Awaited<ReturnType<typeof callError>>): [string, string][] {
  const [badRequest] = error.findDetails(BadRequestSchema);
  return (badRequest?.fieldViolations ?? []).map((v) => [v.field, v.description]);
}

const eur = (minorUnits: bigint) => ({ currencyCode: "EUR", minorUnits });

describe.each(databaseKinds)("PaymentService on $name", (kind) => {
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

  /** Every payment recorded for an order, through the public API. */
  async function paymentsOf(orderId: string): Promise<Payment[]> {
    return (await service.client().listPayments({ orderId })).payments;
  }

  /** Every event ever recorded for an order: a replay from cursor 0, read until it goes quiet. */
  async function eventsOf(orderId: string) {
    const abort = new AbortController();
    try {
      const stream = service
        .client()
        .watchPayments({ resumeCursor: "0", orderId }, { signal: abort.signal })
        [Symbol.asyncIterator]();
      const isHeartbeat = (r: WatchPaymentsResponse) => r.kind.case === "heartbeat";
      await takeUntil(stream, 1, isHeartbeat);
      const items = await takeUntil(stream, 1, isHeartbeat);
      return items.flatMap((r) => (r.kind.case === "event" ? [r.kind.value] : []));
    } finally {
      abort.abort();
    }
  }

  describe.each(protocols)("over %s", (protocol: Protocol) => {
    const client = () => service.client(protocol);

    it("charges a payment token and reads the payment back", async () => {
      const request = newCharge();
      const { payment } = await client().charge(request);
      expect(payment).toMatchObject({
        orderId: request.orderId,
        userId: request.userId,
        amount: { currencyCode: "EUR", minorUnits: 1999n },
        refundedAmount: { currencyCode: "EUR", minorUnits: 0n },
        status: PaymentStatus.SUCCEEDED,
        declineReason: "",
        idempotencyKey: request.idempotencyKey,
      });
      expect(payment?.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(payment?.createTime).toBeDefined();
      const { payment: fetched } = await client().getPayment({ id: payment?.id ?? "" });
      expect(fetched).toEqual(payment);
    });

    it("names every problem of a charge request at once", async () => {
      const empty = await callError(client().charge({}));
      expect(empty.code).toBe(Code.InvalidArgument);
      expect(fieldViolations(empty)).toEqual([
        ["order_id", "must not be empty"],
        ["user_id", "must not be empty"],
        ["amount", "is required"],
        ["payment_token", "must not be empty"],
        [
          "idempotency_key",
          "must not be empty; send one unique key (a UUID, say) per intended operation",
        ],
      ]);

      const malformed = await callError(
        client().charge({
          ...newCharge(),
          orderId: "42",
          userId: "not-a-uuid",
          amount: { currencyCode: "eur", minorUnits: 0n },
          paymentToken: "4111111111111111",
        }),
      );
      expect(malformed.code).toBe(Code.InvalidArgument);
      expect(fieldViolations(malformed)).toEqual([
        ["order_id", 'must be an order id (a UUID), got "42"'],
        ["user_id", 'must be a user id (a UUID), got "not-a-uuid"'],
        [
          "amount.currency_code",
          'must be an ISO 4217 currency code of three upper-case letters like "EUR", got "eur"',
        ],
        ["amount.minor_units", "must be positive, got 0"],
        [
          "payment_token",
          'must be a payment token: "tok_" then 1 to 64 lower-case letters, digits or underscores',
        ],
      ]);
      // The card-like token is never echoed back (messages end up in logs).
      expect(malformed.rawMessage).not.toContain("4111111111111111");
    });
  });

  describe("Charge", () => {
    it.each([
      ["tok_declined", 1999n, "the card was declined"],
      ["tok_insufficient_funds", 1999n, "insufficient funds"],
      ["tok_visa", 5_000_001n, "amount exceeds the card's limit"],
    ])(
      "records a decline for %s of %d as a payment, not an error",
      async (token, minor, reason) => {
        const request = newCharge({ paymentToken: token, amount: eur(minor) });
        const { payment } = await service.client().charge(request);
        expect(payment).toMatchObject({ status: PaymentStatus.DECLINED, declineReason: reason });
        expect(await paymentsOf(request.orderId)).toEqual([payment]);
      },
    );

    it("approves up to the card limit, and refuses amounts above the service's maximum", async () => {
      const { payment } = await service.client().charge(newCharge({ amount: eur(5_000_000n) }));
      expect(payment?.status).toBe(PaymentStatus.SUCCEEDED);
      const tooLarge = await callError(
        service.client().charge(newCharge({ amount: eur(100_000_001n) })),
      );
      expect(tooLarge.code).toBe(Code.InvalidArgument);
      expect(fieldViolations(tooLarge)).toEqual([
        ["amount.minor_units", "must be at most 100000000, got 100000001"],
      ]);
    });

    it("returns the original payment for a retried charge, without a second row or event", async () => {
      const request = newCharge();
      const first = await service.client().charge(request);
      const again = await service.client().charge(request);
      const viaJson = await service.client("connect-json").charge(request);
      expect(again.payment).toEqual(first.payment);
      expect(viaJson.payment).toEqual(first.payment);
      expect(await paymentsOf(request.orderId)).toHaveLength(1);
      const events = await eventsOf(request.orderId);
      expect(events.map((e) => [e.type, e.payment?.id])).toEqual([
        [PaymentEventType.SUCCEEDED, first.payment?.id],
      ]);
    });

    it("returns a recorded decline on retry too", async () => {
      const request = newCharge({ paymentToken: "tok_insufficient_funds" });
      const first = await service.client().charge(request);
      const again = await service.client().charge(request);
      expect(again.payment).toEqual(first.payment);
      expect(again.payment?.status).toBe(PaymentStatus.DECLINED);
      expect(await paymentsOf(request.orderId)).toHaveLength(1);
    });

    it("answers a retry from the record, without asking the processor again", async () => {
      const request = newCharge({ paymentToken: "tok_slow" });
      const first = await service.client().charge(request);
      // The processor takes testSlowMs for tok_slow; a retry given half that must not reach it.
      const again = await service.client().charge(request, { timeoutMs: testSlowMs / 2 });
      expect(again.payment).toEqual(first.payment);
    });

    it("refuses a reused key with a different request, naming the key", async () => {
      const request = newCharge();
      const { payment } = await service.client().charge(request);
      for (const changed of [
        { amount: eur(2000n) },
        { amount: { currencyCode: "USD", minorUnits: 1999n } },
        { paymentToken: "tok_mastercard" },
        { orderId: randomUUID() },
        { userId: randomUUID() },
      ]) {
        const error = await callError(service.client().charge({ ...request, ...changed }));
        expect(error.code).toBe(Code.FailedPrecondition);
        expect(error.rawMessage).toBe(
          `idempotency key "${request.idempotencyKey}" was already used for a different charge (payment ${payment?.id}); use a new key for a new charge`,
        );
        expect(error.findDetails(PreconditionFailureSchema)[0]?.violations[0]).toMatchObject({
          type: "IDEMPOTENCY_KEY_REUSED",
          subject: request.idempotencyKey,
        });
      }
      expect(await paymentsOf(request.orderId)).toHaveLength(1);
    });

    it("makes one payment of ten identical charges sent at once", async () => {
      const request = newCharge();
      const results = await Promise.all(
        Array.from({ length: 10 }, () => service.client().charge(request)),
      );
      expect(new Set(results.map((r) => r.payment?.id)).size).toBe(1);
      expect(await paymentsOf(request.orderId)).toHaveLength(1);
      expect(await eventsOf(request.orderId)).toHaveLength(1);
    });

    it("lets one of two racing requests with the same key win, and refuses the other", async () => {
      const request = newCharge();
      const other = { ...request, amount: eur(2500n) };
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => service.client().charge(i % 2 ? request : other)),
      );
      const won = results.flatMap((r) => (r.status === "fulfilled" ? [r.value.payment] : []));
      const lost = results.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
      expect(new Set(won.map((p) => p?.id)).size).toBe(1);
      expect(won.length).toBe(5);
      expect(lost.map((e) => callErrorCode(e))).toEqual(Array(5).fill(Code.FailedPrecondition));
      expect(await paymentsOf(request.orderId)).toHaveLength(1);
    });

    it("records nothing when the caller's deadline passes while the processor thinks; the retry succeeds", async () => {
      const request = newCharge({ paymentToken: "tok_slow" });
      const error = await callError(service.client().charge(request, { timeoutMs: 200 }));
      expect(error.code).toBe(Code.DeadlineExceeded);
      // Wait until the processor would have answered: the server gave up, and wrote nothing.
      await sleep(testSlowMs + 300);
      expect(await paymentsOf(request.orderId)).toEqual([]);
      // The server ended the call itself: by its deadline, or by the client's cancel if that came first.
      // Never INTERNAL: a caller giving up is not a fault of this service.
      const ended = service.logs.records
        .filter((r) => r.rpc === "meridian.payment.v1.PaymentService/Charge")
        .map((r) => String(r.code))
        .filter((code) => ["DEADLINE_EXCEEDED", "CANCELLED", "INTERNAL", "UNKNOWN"].includes(code));
      expect(ended).toHaveLength(1);
      expect(ended[0]).toMatch(/^(DEADLINE_EXCEEDED|CANCELLED)$/);

      const { payment } = await service.client().charge(request, { timeoutMs: testSlowMs * 5 });
      expect(payment?.status).toBe(PaymentStatus.SUCCEEDED);
      expect(await paymentsOf(request.orderId)).toEqual([payment]);
    });

    it("records nothing when the caller cancels while the processor thinks", async () => {
      const request = newCharge({ paymentToken: "tok_slow" });
      const abort = new AbortController();
      const call = service.client().charge(request, { signal: abort.signal });
      setTimeout(() => abort.abort(), 100);
      expect((await callError(call)).code).toBe(Code.Canceled);
      await sleep(testSlowMs + 300);
      expect(await paymentsOf(request.orderId)).toEqual([]);
    });
  });

  describe("Refund", () => {
    async function charged(minor = 1000n): Promise<Payment> {
      const { payment } = await service.client().charge(newCharge({ amount: eur(minor) }));
      if (payment === undefined) throw new Error("no payment");
      return payment;
    }
    const refund = (paymentId: string, minor?: bigint, idempotencyKey = randomUUID()) =>
      service.client().refund({
        paymentId,
        amount: minor === undefined ? undefined : eur(minor),
        idempotencyKey,
        reason: "customer changed their mind",
      });

    it("refunds everything when no amount is given", async () => {
      const payment = await charged(1000n);
      const { payment: refunded } = await refund(payment.id);
      expect(refunded).toMatchObject({
        id: payment.id,
        status: PaymentStatus.REFUNDED,
        amount: eur(1000n),
        refundedAmount: eur(1000n),
      });
      const again = await callError(refund(payment.id));
      expect(again.code).toBe(Code.FailedPrecondition);
      expect(again.rawMessage).toBe(`payment ${payment.id} is already fully refunded`);
    });

    it("refunds in parts until nothing is left", async () => {
      const payment = await charged(1000n);
      const first = await refund(payment.id, 300n);
      expect(first.payment).toMatchObject({
        status: PaymentStatus.PARTIALLY_REFUNDED,
        refundedAmount: eur(300n),
      });
      const rest = await refund(payment.id);
      expect(rest.payment).toMatchObject({
        status: PaymentStatus.REFUNDED,
        refundedAmount: eur(1000n),
      });
      const events = await eventsOf(payment.orderId);
      expect(events.map((e) => [e.type, e.payment?.refundedAmount?.minorUnits])).toEqual([
        [PaymentEventType.SUCCEEDED, 0n],
        [PaymentEventType.REFUNDED, 300n],
        [PaymentEventType.REFUNDED, 1000n],
      ]);
    });

    it("never refunds more than is left", async () => {
      const payment = await charged(1000n);
      const tooMuch = await callError(refund(payment.id, 1001n));
      expect(tooMuch.code).toBe(Code.FailedPrecondition);
      expect(tooMuch.rawMessage).toBe(
        `cannot refund 1001 EUR minor units of payment ${payment.id}: only 1000 of its 1000 are not refunded yet`,
      );
      await refund(payment.id, 400n);
      const over = await callError(refund(payment.id, 700n));
      expect(over.code).toBe(Code.FailedPrecondition);
      expect(over.rawMessage).toContain("only 600 of its 1000 are not refunded yet");
      const { payment: now } = await service.client().getPayment({ id: payment.id });
      expect(now?.refundedAmount?.minorUnits).toBe(400n);
    });

    it("refunds once per idempotency key, and refuses the key for a different refund", async () => {
      const payment = await charged(1000n);
      const key = randomUUID();
      const first = await refund(payment.id, 300n, key);
      const retried = await refund(payment.id, 300n, key);
      expect(retried.payment).toEqual(first.payment);
      expect(retried.payment?.refundedAmount?.minorUnits).toBe(300n);

      const changed = await callError(refund(payment.id, 200n, key));
      expect(changed.code).toBe(Code.FailedPrecondition);
      expect(changed.rawMessage).toBe(
        `idempotency key "${key}" was already used for a different refund (of payment ${payment.id}); use a new key for a new refund`,
      );
      const elsewhere = await callError(refund((await charged()).id, 300n, key));
      expect(elsewhere.code).toBe(Code.FailedPrecondition);

      // "The rest", retried after it emptied the payment, is the same request: no error.
      const restKey = randomUUID();
      const rest = await refund(payment.id, undefined, restKey);
      expect(rest.payment?.status).toBe(PaymentStatus.REFUNDED);
      expect((await refund(payment.id, undefined, restKey)).payment).toEqual(rest.payment);
    });

    it("refunds concurrent requests one at a time, never over-refunding", async () => {
      const payment = await charged(1000n);
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, () => refund(payment.id, 300n)),
      );
      const succeeded = results.filter((r) => r.status === "fulfilled");
      const refused = results.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
      expect(succeeded).toHaveLength(3);
      expect(refused.map(callErrorCode)).toEqual(Array(7).fill(Code.FailedPrecondition));
      const { payment: now } = await service.client().getPayment({ id: payment.id });
      expect(now).toMatchObject({
        status: PaymentStatus.PARTIALLY_REFUNDED,
        refundedAmount: eur(900n),
      });
    });

    it("refunds once when one refund is retried concurrently", async () => {
      const payment = await charged(1000n);
      const key = randomUUID();
      const results = await Promise.all(
        Array.from({ length: 8 }, () => refund(payment.id, 250n, key)),
      );
      for (const r of results) expect(r.payment?.refundedAmount?.minorUnits).toBe(250n);
      const events = await eventsOf(payment.orderId);
      expect(events.map((e) => e.type)).toEqual([
        PaymentEventType.SUCCEEDED,
        PaymentEventType.REFUNDED,
      ]);
    });

    it("refuses to refund a declined payment, an unknown one, or in another currency", async () => {
      const { payment: declined } = await service
        .client()
        .charge(newCharge({ paymentToken: "tok_declined" }));
      const notCharged = await callError(refund(declined?.id ?? ""));
      expect(notCharged.code).toBe(Code.FailedPrecondition);
      expect(notCharged.rawMessage).toBe(
        `payment ${declined?.id} was declined; no money was taken, so there is nothing to refund`,
      );

      const missing = randomUUID();
      const notFound = await callError(refund(missing));
      expect(notFound.code).toBe(Code.NotFound);
      expect(notFound.findDetails(ResourceInfoSchema)[0]).toMatchObject({
        resourceType: "payment",
        resourceName: missing,
      });

      const payment = await charged(1000n);
      const currency = await callError(
        service.client().refund({
          paymentId: payment.id,
          amount: { currencyCode: "USD", minorUnits: 100n },
          idempotencyKey: randomUUID(),
          reason: "wrong currency",
        }),
      );
      expect(currency.code).toBe(Code.InvalidArgument);
      expect(fieldViolations(currency)).toEqual([
        ["amount.currency_code", 'must be the payment\'s currency, EUR, got "USD"'],
      ]);
    });

    it("names every problem of a refund request at once", async () => {
      const empty = await callError(
        service.client().refund({ amount: { currencyCode: "", minorUnits: 0n } }),
      );
      expect(empty.code).toBe(Code.InvalidArgument);
      expect(fieldViolations(empty).map(([field]) => field)).toEqual([
        "payment_id",
        "amount.currency_code",
        "amount.minor_units",
        "idempotency_key",
        "reason",
      ]);
    });
  });

  describe("ListPayments", () => {
    it("lists newest first, a page at a time, each payment once, with filters", async () => {
      const userId = randomUUID();
      const made: Payment[] = [];
      for (const token of ["tok_visa", "tok_declined", "tok_visa", "tok_visa", "tok_declined"]) {
        const { payment } = await service
          .client()
          .charge(newCharge({ userId, paymentToken: token }));
        if (payment) made.push(payment);
      }
      const newestFirst = [...made].reverse().map((p) => p.id);

      const seen: string[] = [];
      let pageToken = "";
      let pages = 0;
      do {
        const page = await service.client().listPayments({ userId, pageSize: 2, pageToken });
        seen.push(...page.payments.map((p) => p.id));
        pageToken = page.nextPageToken;
        pages++;
      } while (pageToken !== "");
      expect(seen).toEqual(newestFirst);
      expect(pages).toBe(3);

      const declined = await service
        .client()
        .listPayments({ userId, status: PaymentStatus.DECLINED });
      expect(declined.payments.map((p) => p.id)).toEqual(
        newestFirst.filter(
          (id) => made.find((p) => p.id === id)?.status === PaymentStatus.DECLINED,
        ),
      );
      expect(declined.payments).toHaveLength(2);

      const first = await service.client().listPayments({ userId, pageSize: 2 });
      const otherFilter = await callError(
        service.client().listPayments({ pageSize: 2, pageToken: first.nextPageToken }),
      );
      expect(otherFilter.code).toBe(Code.InvalidArgument);
      expect(fieldViolations(otherFilter)[0]?.[0]).toBe("page_token");
    });

    it("refuses bad page sizes, ids and statuses", async () => {
      const error = await callError(
        service
          .client()
          .listPayments({ pageSize: 1001, orderId: "x", status: 99 as PaymentStatus }),
      );
      expect(error.code).toBe(Code.InvalidArgument);
      expect(fieldViolations(error).map(([field]) => field)).toEqual(["order_id", "status"]);
      const size = await callError(service.client().listPayments({ pageSize: 1001 }));
      expect(fieldViolations(size)[0]?.[0]).toBe("page_size");
    });
  });

  it("answers NOT_FOUND for an unknown payment and INVALID_ARGUMENT for a malformed id", async () => {
    const missing = randomUUID();
    const notFound = await callError(service.client().getPayment({ id: missing }));
    expect(notFound.code).toBe(Code.NotFound);
    expect(notFound.rawMessage).toBe(`payment "${missing}" not found`);
    const malformed = await callError(service.client().getPayment({ id: "42" }));
    expect(malformed.code).toBe(Code.InvalidArgument);
    expect(fieldViolations(malformed)).toEqual([["id", 'must be a payment id (a UUID), got "42"']]);
  });
});

function callErrorCode(error: unknown): Code | undefined {
  return (error as { code?: Code }).code;
}
