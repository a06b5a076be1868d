/**
 * PaymentRepository on a real database: the SQL statements of Charge return
 * exactly what Prisma's model returns, and a charge commits with its event.
 */
import { fileURLToPath } from "node:url";
import { type Database, outboxSource } from "@meridian/platform";
import { PaymentEventType, PaymentStatus } from "@meridian/proto/meridian/payment/v1/payment_pb";
import {
  type OpenTestDatabase,
  openTestDatabase,
  rowHeldBeforeOutboxLock,
  testDatabaseKinds,
} from "@meridian/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chargeFingerprint, type NewCharge } from "../src/domain.js";
import { type Prisma, PrismaClient } from "../src/generated/prisma/client.js";
import {
  PaymentRepository,
  paymentColumns,
  paymentEventsChannel,
  paymentEventTable,
} from "../src/repository.js";

const databaseKinds = await testDatabaseKinds();
const migrationsDir = fileURLToPath(new URL("../prisma/migrations", import.meta.url));

describe.each(databaseKinds)("PaymentRepository on $name", (kind) => {
  let opened: OpenTestDatabase;
  let database: Database;
  let prisma: PrismaClient;
  let payments: PaymentRepository;
  beforeAll(async () => {
    opened = await openTestDatabase(kind, migrationsDir);
    database = opened.database;
    prisma = new PrismaClient({ adapter: database.adapter });
    payments = new PaymentRepository(prisma);
  });
  afterAll(async () => {
    await prisma?.$disconnect();
    await opened?.close();
  });

  const newCharge = (): NewCharge => ({
    orderId: crypto.randomUUID(),
    userId: crypto.randomUUID(),
    amount: { currencyCode: "EUR", minorUnits: 19_99n },
    paymentToken: "tok_visa",
    idempotencyKey: crypto.randomUUID(),
  });

  it("selects every column of a payment as Prisma's model reads it", async () => {
    const charge = newCharge();
    const payment = await payments.recordCharge(charge, chargeFingerprint(charge), {
      approved: false,
      declineReason: "the card was declined",
    });
    const [raw] = await prisma.$queryRaw<unknown[]>`
      SELECT ${paymentColumns} FROM payments WHERE id = ${payment.id}::uuid`;
    expect(raw).toEqual(await prisma.payment.findUnique({ where: { id: payment.id } }));
    expect(await payments.findCharge(charge.idempotencyKey)).toEqual(raw);
  });

  it("reads events for the watch feed as Prisma's model reads them", async () => {
    const charge = newCharge();
    await payments.recordCharge(charge, chargeFingerprint(charge), { approved: true });
    const asModel = outboxSource(prisma.paymentEvent, (row) => row);
    const asSql = outboxSource(paymentEventTable(prisma), (row) => row);
    const rows = await asSql.readAfter(0n, 1000);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows).toEqual(await asModel.readAfter(0n, 1000));
    expect(await asSql.readAfter(rows[0]?.cursor ?? 0n, 1)).toEqual(rows.slice(1, 2));
  });

  it("records a charge with its event, and finds it by key", async () => {
    const charge = newCharge();
    expect(await payments.findCharge(charge.idempotencyKey)).toBeNull();
    const payment = await payments.recordCharge(charge, chargeFingerprint(charge), {
      approved: true,
    });
    expect(payment).toMatchObject({
      orderId: charge.orderId,
      userId: charge.userId,
      status: PaymentStatus.SUCCEEDED,
      amount: { currencyCode: "EUR", minorUnits: 19_99n },
      refundedAmount: { currencyCode: "EUR", minorUnits: 0n },
    });
    expect(await payments.get(payment.id)).toEqual(payment);
    const events = (await payments.events.readAfter(0n, 1000)).filter(
      (e) => e.orderId === charge.orderId,
    );
    expect(events.map((e) => e.message.type)).toEqual([PaymentEventType.SUCCEEDED]);
    expect(events[0]?.message.payment).toEqual(payment);
  });

  // PGlite runs one transaction at a time, so only PostgreSQL can interleave these.
  it.skipIf(kind.name === "pglite")(
    "replays a charge recorded again without a deadlock while a refund holds the payment",
    async () => {
      const charge = newCharge();
      const fingerprint = chargeFingerprint(charge);
      const first = await payments.recordCharge(charge, fingerprint, { approved: true });
      // As a refund of the payment: its row, then the outbox lock.
      const refund = await rowHeldBeforeOutboxLock(
        (body) => prisma.$transaction(body, { timeout: 10_000 }),
        (tx: Prisma.TransactionClient) =>
          tx.$executeRaw`UPDATE payments SET refunded_minor = 1 WHERE id = ${first.id}::uuid`,
        paymentEventsChannel,
      );
      const again = payments.recordCharge(charge, fingerprint, { approved: true });
      // Long enough for the second record to reach the row the refund holds.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await refund.release();
      expect((await again).id).toBe(first.id);
    },
  );

  it("returns the first payment, and writes no second event, when a key is recorded twice", async () => {
    const charge = newCharge();
    const fingerprint = chargeFingerprint(charge);
    const [first, second] = await Promise.all([
      payments.recordCharge(charge, fingerprint, { approved: true }),
      payments.recordCharge(charge, fingerprint, { approved: true }),
    ]);
    expect(second).toEqual(first);
    const events = (await payments.events.readAfter(0n, 1000)).filter(
      (e) => e.orderId === charge.orderId,
    );
    expect(events).toHaveLength(1);
  });
});
