/**
 * Storage of payments, their refunds and their change events (the
 * WatchPayments outbox). Every change and its event commit in one
 * transaction, or neither does; the unique idempotency keys are what make a
 * retried Charge or Refund take effect once, even when the retries race.
 *
 * The statements of Charge (find by key, record with the event, and the
 * watch feed's read of new events) are SQL through Prisma's tagged
 * templates (`$queryRaw`), not model queries: Prisma 6 compiles every query
 * anew, and a model query costs 2 to 3 times the CPU of the same statement
 * as SQL (a SELECT by key: about 1 ms against 0.4 ms). They select the
 * model's columns under its field names, so rows come back as the model's
 * types, exactly as a model query returns them (test/repository.test.ts
 * checks both agree). Refunds and other reads use the model.
 * `npm run bench -- --only e2e` shows the CPU this costs per order.
 */
import { randomUUID } from "node:crypto";
import { create, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  afterPagePosition,
  type EventSource,
  FailedPreconditionError,
  InvalidArgumentError,
  isUniqueViolation,
  NotFoundError,
  type OutboxTable,
  outboxSource,
  writeToOutbox,
} from "@meridian/platform";
import {
  type Payment,
  type PaymentEvent,
  PaymentEventSchema,
  PaymentEventType,
  PaymentSchema,
  PaymentStatus,
} from "@meridian/proto/meridian/payment/v1/payment_pb";
import type { NewCharge, NewRefund, PaymentFilter } from "./domain.js";
import {
  type PaymentEvent as PaymentEventRow,
  type Payment as PaymentRow,
  Prisma,
  type PrismaClient,
} from "./generated/prisma/client.js";
import type { ProcessorOutcome } from "./processor.js";

/** The NOTIFY channel (and lock name) of the payment_events outbox. */
export const paymentEventsChannel = "payment_events";

export interface ListPaymentsQuery extends PaymentFilter {
  limit: number;
  /** [createTime ISO string, id] of the last payment of the previous page. */
  after?: readonly string[];
}

/** An outbox row ready to send: its cursor, what watchers filter on, and the message. */
export interface StoredPaymentEvent {
  cursor: bigint;
  orderId: string;
  userId: string;
  message: PaymentEvent;
}

const statusToRow = {
  [PaymentStatus.SUCCEEDED]: "SUCCEEDED",
  [PaymentStatus.DECLINED]: "DECLINED",
  [PaymentStatus.PARTIALLY_REFUNDED]: "PARTIALLY_REFUNDED",
  [PaymentStatus.REFUNDED]: "REFUNDED",
} as const satisfies Record<Exclude<PaymentStatus, PaymentStatus.UNSPECIFIED>, string>;

/** Every column of `payments`, under the Prisma model's field names: rows typed as `PaymentRow`. */
export const paymentColumns = Prisma.sql`id, order_id AS "orderId", user_id AS "userId",
  currency_code AS "currencyCode", amount_minor AS "amountMinor",
  refunded_minor AS "refundedMinor", status, decline_reason AS "declineReason",
  idempotency_key AS "idempotencyKey", request_fingerprint AS "requestFingerprint",
  created_at AS "createdAt", updated_at AS "updatedAt"`;

/**
 * payment_events as the watch feed reads it. The feed reads after every commit,
 * so its read is SQL too; the newest cursor, read once at start, is not.
 */
export function paymentEventTable(prisma: PrismaClient): OutboxTable<PaymentEventRow> {
  return {
    findMany: ({ where, take }) => prisma.$queryRaw<PaymentEventRow[]>`
      SELECT cursor, type, payment_id AS "paymentId", order_id AS "orderId",
             user_id AS "userId", payment, occurred_at AS "occurredAt"
      FROM payment_events WHERE cursor > ${where.cursor.gt} ORDER BY cursor LIMIT ${take}`,
    findFirst: (args) => prisma.paymentEvent.findFirst(args),
  };
}

export class PaymentRepository {
  /** The payment_events outbox, for the watch feed. */
  readonly events: EventSource<StoredPaymentEvent>;

  constructor(private readonly prisma: PrismaClient) {
    this.events = outboxSource(paymentEventTable(prisma), toStoredEvent);
  }

  /** The payment recorded under a charge's idempotency key, if any. */
  async findCharge(idempotencyKey: string): Promise<PaymentRow | null> {
    const [row] = await this.prisma.$queryRaw<PaymentRow[]>`
      SELECT ${paymentColumns} FROM payments WHERE idempotency_key = ${idempotencyKey}`;
    return row ?? null;
  }

  /**
   * Records a charge and the processor's outcome. When a concurrent retry
   * with the same key got there first, the unique key decides: this returns
   * the winner's payment, as if this call had been the retry.
   */
  async recordCharge(
    charge: NewCharge,
    fingerprint: string,
    outcome: ProcessorOutcome,
  ): Promise<Payment> {
    const now = new Date();
    const status = outcome.approved ? "SUCCEEDED" : "DECLINED";
    // Times from this process's clock, as Prisma's @default(now()) and
    // @updatedAt would set them: the row is known before it is written.
    const row: PaymentRow = {
      id: randomUUID(),
      orderId: charge.orderId,
      userId: charge.userId,
      currencyCode: charge.amount.currencyCode,
      amountMinor: charge.amount.minorUnits,
      refundedMinor: 0n,
      status,
      declineReason: outcome.approved ? "" : outcome.declineReason,
      idempotencyKey: charge.idempotencyKey,
      requestFingerprint: fingerprint,
      createdAt: now,
      updatedAt: now,
    };
    try {
      return await this.prisma.$transaction(async (tx) => {
        // Before the outbox lock, never after it: a duplicate key waits here
        // for a transaction that holds the payment's row, and that
        // transaction may be waiting for the outbox lock (a refund).
        await tx.$executeRaw`
          INSERT INTO payments (id, order_id, user_id, currency_code, amount_minor, status,
                                decline_reason, idempotency_key, request_fingerprint,
                                created_at, updated_at)
          VALUES (${row.id}::uuid, ${row.orderId}::uuid, ${row.userId}::uuid,
                  ${row.currencyCode}, ${row.amountMinor}, ${status}::"PaymentStatus",
                  ${row.declineReason}, ${row.idempotencyKey}, ${fingerprint}, ${now}, ${now})`;
        return this.recordEvent(tx, status, row);
      });
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      const winner = await this.findCharge(charge.idempotencyKey);
      if (winner === null) throw error;
      return replayCharge(winner, fingerprint);
    }
  }

  /**
   * Refunds part or all of a payment, once per idempotency key. The
   * payment's row is locked for the whole transaction, so concurrent refunds
   * of one payment take turns and each sees what the others refunded: no
   * combination of them can refund more than was charged.
   */
  async refund(refund: NewRefund, fingerprint: string): Promise<Payment> {
    try {
      return await this.prisma.$transaction(async (tx) => {
        const locked = await tx.$queryRaw<{ id: string }[]>`
          SELECT id FROM payments WHERE id = ${refund.paymentId}::uuid FOR UPDATE`;
        if (locked.length === 0) throw new NotFoundError("payment", refund.paymentId);
        // Read after the lock: under READ COMMITTED this sees every refund committed before it.
        const payment = await tx.payment.findUniqueOrThrow({ where: { id: refund.paymentId } });
        const earlier = await tx.refund.findUnique({
          where: { idempotencyKey: refund.idempotencyKey },
          include: { payment: true },
        });
        if (earlier !== null) {
          return replayRefund(
            earlier.requestFingerprint,
            fingerprint,
            refund.idempotencyKey,
            earlier.payment,
          );
        }
        const amount = refundableAmount(payment, refund);
        await tx.refund.create({
          data: {
            id: randomUUID(),
            paymentId: payment.id,
            amountMinor: amount,
            reason: refund.reason,
            idempotencyKey: refund.idempotencyKey,
            requestFingerprint: fingerprint,
          },
        });
        const refunded = payment.refundedMinor + amount;
        const row = await tx.payment.update({
          where: { id: payment.id },
          data: {
            refundedMinor: refunded,
            status: refunded === payment.amountMinor ? "REFUNDED" : "PARTIALLY_REFUNDED",
          },
        });
        return this.recordEvent(tx, "REFUNDED", row);
      });
    } catch (error) {
      // The same key used concurrently for another payment: no shared row lock, so the unique key decides.
      if (!isUniqueViolation(error)) throw error;
      const earlier = await this.prisma.refund.findUnique({
        where: { idempotencyKey: refund.idempotencyKey },
        include: { payment: true },
      });
      if (earlier === null) throw error;
      return replayRefund(
        earlier.requestFingerprint,
        fingerprint,
        refund.idempotencyKey,
        earlier.payment,
      );
    }
  }

  async get(id: string): Promise<Payment> {
    const row = await this.prisma.payment.findUnique({ where: { id } });
    if (!row) throw new NotFoundError("payment", id);
    return toPayment(row);
  }

  /** Newest first, in (create_time, id) order. */
  async list({ orderId, userId, status, limit, after }: ListPaymentsQuery): Promise<Payment[]> {
    const rows = await this.prisma.payment.findMany({
      where: {
        ...(orderId ? { orderId } : {}),
        ...(userId ? { userId } : {}),
        ...(status !== PaymentStatus.UNSPECIFIED ? { status: statusToRow[status] } : {}),
        ...afterPagePosition(after, "desc"),
      },
      orderBy: [{ createdAt: "desc" }, { id: "desc" }],
      take: limit,
    });
    return rows.map(toPayment);
  }

  /**
   * Writes the change's event into the outbox, inside the change's
   * transaction. Its time is PostgreSQL's clock read after the outbox lock
   * is taken, so events in cursor order are in time order too, whichever
   * replica wrote them.
   */
  private async recordEvent(
    tx: Prisma.TransactionClient,
    type: PaymentEventRow["type"],
    row: PaymentRow,
  ): Promise<Payment> {
    const payment = toPayment(row);
    const json = JSON.stringify(toJson(PaymentSchema, payment));
    await writeToOutbox(
      tx,
      paymentEventsChannel,
      () => tx.$executeRaw`
        INSERT INTO payment_events (type, payment_id, order_id, user_id, payment, occurred_at)
        VALUES (${type}::"PaymentEventType", ${row.id}::uuid, ${row.orderId}::uuid,
                ${row.userId}::uuid, ${json}::jsonb, clock_timestamp())`,
    );
    return payment;
  }
}

/** A charge retried with its key: the original payment, as it is now, if the request matches. */
export function replayCharge(row: PaymentRow, fingerprint: string): Payment {
  if (row.requestFingerprint !== fingerprint) {
    throw new FailedPreconditionError(
      "IDEMPOTENCY_KEY_REUSED",
      row.idempotencyKey,
      `idempotency key "${row.idempotencyKey}" was already used for a different charge (payment ${row.id}); use a new key for a new charge`,
    );
  }
  return toPayment(row);
}

function replayRefund(
  storedFingerprint: string,
  fingerprint: string,
  idempotencyKey: string,
  payment: PaymentRow,
): Payment {
  if (storedFingerprint !== fingerprint) {
    throw new FailedPreconditionError(
      "IDEMPOTENCY_KEY_REUSED",
      idempotencyKey,
      `idempotency key "${idempotencyKey}" was already used for a different refund (of payment ${payment.id}); use a new key for a new refund`,
    );
  }
  return toPayment(payment);
}

/** How much this refund moves, in minor units; or why it cannot happen. */
function refundableAmount(payment: PaymentRow, refund: NewRefund): bigint {
  if (payment.status === "DECLINED") {
    throw new FailedPreconditionError(
      "PAYMENT_NOT_REFUNDABLE",
      payment.id,
      `payment ${payment.id} was declined; no money was taken, so there is nothing to refund`,
    );
  }
  if (payment.status === "REFUNDED") {
    throw new FailedPreconditionError(
      "PAYMENT_NOT_REFUNDABLE",
      payment.id,
      `payment ${payment.id} is already fully refunded`,
    );
  }
  const remaining = payment.amountMinor - payment.refundedMinor;
  if (refund.amount === undefined) return remaining;
  if (refund.amount.currencyCode !== payment.currencyCode) {
    throw InvalidArgumentError.field(
      "amount.currency_code",
      `must be the payment's currency, ${payment.currencyCode}, got "${refund.amount.currencyCode}"`,
    );
  }
  if (refund.amount.minorUnits > remaining) {
    throw new FailedPreconditionError(
      "REFUND_EXCEEDS_REMAINING",
      payment.id,
      `cannot refund ${refund.amount.minorUnits} ${payment.currencyCode} minor units of payment ${payment.id}: ` +
        `only ${remaining} of its ${payment.amountMinor} are not refunded yet`,
    );
  }
  return refund.amount.minorUnits;
}

function toPayment(row: PaymentRow): Payment {
  return create(PaymentSchema, {
    id: row.id,
    orderId: row.orderId,
    userId: row.userId,
    amount: { currencyCode: row.currencyCode, minorUnits: row.amountMinor },
    status: PaymentStatus[row.status],
    declineReason: row.declineReason,
    refundedAmount: { currencyCode: row.currencyCode, minorUnits: row.refundedMinor },
    idempotencyKey: row.idempotencyKey,
    createTime: timestampFromDate(row.createdAt),
    updateTime: timestampFromDate(row.updatedAt),
  });
}

function toStoredEvent(row: PaymentEventRow): StoredPaymentEvent {
  return {
    cursor: row.cursor,
    orderId: row.orderId,
    userId: row.userId,
    message: create(PaymentEventSchema, {
      cursor: row.cursor.toString(),
      type: PaymentEventType[row.type],
      payment: fromJson(PaymentSchema, row.payment as JsonValue),
      occurTime: timestampFromDate(row.occurredAt),
    }),
  };
}
