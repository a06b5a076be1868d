/**
 * Storage of orders and of their change events (the WatchOrders outbox).
 * Every change and its event commit in one transaction, or neither does.
 *
 * The statements of CreateOrder (find by key, record with the event, move
 * to a new status, and the watch feed's read of new events) are SQL through
 * Prisma's tagged templates (`$queryRaw`), not model queries: Prisma 6
 * compiles every query anew, and a model query costs 2 to 3 times the CPU
 * of the same statement as SQL (a SELECT by key: about 1 ms against 0.4
 * ms). They select the model's columns under its field names, so rows come
 * back as the model's types, exactly as a model query returns them
 * (test/repository.test.ts checks both agree). Everything else uses the
 * model. `npm run bench -- --only e2e` shows the CPU this costs per order.
 */
import { randomUUID } from "node:crypto";
import { create, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  afterPagePosition,
  type EventSource,
  isUniqueViolation,
  NotFoundError,
  type OutboxTable,
  outboxSource,
  writeToOutbox,
} from "@meridian/platform";
import { MoneySchema } from "@meridian/proto/meridian/common/v1/common_pb";
import {
  type LineItem,
  LineItemSchema,
  type Order,
  type OrderEvent,
  OrderEventSchema,
  OrderEventType,
  OrderSchema,
  OrderStatus,
} from "@meridian/proto/meridian/order/v1/order_pb";
import type { OrderRequest, PricedCart } from "./domain.js";
import {
  type OrderEvent as OrderEventRow,
  type Order as OrderRow,
  Prisma,
  type PrismaClient,
  type OrderStatus as StoredStatus,
} from "./generated/prisma/client.js";

/** The NOTIFY channel (and lock name) of the order_events outbox. */
export const orderEventsChannel = "order_events";

/** An order as the workflow needs it: the message plus what is never sent to clients. */
export interface StoredOrder {
  order: Order;
  fingerprint: string;
  paymentToken: string;
}

export interface ListOrdersQuery {
  userId: string;
  status: OrderStatus;
  limit: number;
  /** [createTime ISO string, id] of the last order of the previous page. */
  after?: readonly string[];
}

export interface StoredOrderEvent {
  cursor: bigint;
  message: OrderEvent;
}

const toStored: Record<OrderStatus, StoredStatus | undefined> = {
  [OrderStatus.UNSPECIFIED]: undefined,
  [OrderStatus.PENDING]: "PENDING",
  [OrderStatus.PAID]: "PAID",
  [OrderStatus.PAYMENT_FAILED]: "PAYMENT_FAILED",
  [OrderStatus.PAYMENT_UNCONFIRMED]: "PAYMENT_UNCONFIRMED",
  [OrderStatus.CANCELLED]: "CANCELLED",
};

/** Every column of `orders`, under the Prisma model's field names: rows typed as `OrderRow`. */
export const orderColumns = Prisma.sql`id, user_id AS "userId", idempotency_key AS "idempotencyKey",
  request_fingerprint AS "requestFingerprint", status, status_reason AS "statusReason",
  line_items AS "lineItems", currency_code AS "currencyCode",
  total_minor_units AS "totalMinorUnits", payment_token AS "paymentToken",
  payment_id AS "paymentId", created_at AS "createdAt", updated_at AS "updatedAt"`;

/**
 * order_events as the watch feed reads it. The feed reads after every commit,
 * so its read is SQL too; the newest cursor, read once at start, is not.
 */
export function orderEventTable(prisma: PrismaClient): OutboxTable<OrderEventRow> {
  return {
    findMany: ({ where, take }) => prisma.$queryRaw<OrderEventRow[]>`
      SELECT cursor, type, order_id AS "orderId", "order", occurred_at AS "occurredAt"
      FROM order_events WHERE cursor > ${where.cursor.gt} ORDER BY cursor LIMIT ${take}`,
    findFirst: (args) => prisma.orderEvent.findFirst(args),
  };
}

export class OrderRepository {
  /** The order_events outbox, for the WatchOrders feed. */
  readonly events: EventSource<StoredOrderEvent>;

  constructor(private readonly prisma: PrismaClient) {
    this.events = outboxSource(orderEventTable(prisma), toStoredEvent);
  }

  /**
   * Records a new PENDING order. Undefined when the user already has an
   * order with this idempotency key (a concurrent retry won the race).
   */
  async createPending(
    request: OrderRequest,
    priced: PricedCart,
    fingerprint: string,
  ): Promise<StoredOrder | undefined> {
    const now = new Date();
    const lineItems = priced.lineItems.map((item) => toJson(LineItemSchema, item));
    // Times from this process's clock, as Prisma's @default(now()) and
    // @updatedAt would set them: the row is known before it is written.
    const stored = toStoredOrder({
      id: randomUUID(),
      userId: request.userId,
      idempotencyKey: request.idempotencyKey,
      requestFingerprint: fingerprint,
      status: "PENDING",
      statusReason: "",
      lineItems,
      currencyCode: priced.currencyCode,
      totalMinorUnits: priced.total,
      paymentToken: request.paymentToken,
      paymentId: "",
      createdAt: now,
      updatedAt: now,
    });
    const { order } = stored;
    try {
      await this.prisma.$transaction(async (tx) => {
        // Before the outbox lock, never after it: a duplicate key waits here
        // for a transaction that holds the order's row, and that transaction
        // may be waiting for the outbox lock (a transition of the order).
        await tx.$executeRaw`
          INSERT INTO orders (id, user_id, idempotency_key, request_fingerprint, status,
                              line_items, currency_code, total_minor_units, payment_token,
                              created_at, updated_at)
          VALUES (${order.id}::uuid, ${order.userId}::uuid, ${order.idempotencyKey},
                  ${fingerprint}, 'PENDING', ${JSON.stringify(lineItems)}::jsonb,
                  ${priced.currencyCode}, ${priced.total}, ${request.paymentToken},
                  ${now}, ${now})`;
        await this.recordEvent(tx, "CREATED", order);
      });
      return stored;
    } catch (error) {
      if (isUniqueViolation(error)) return undefined;
      throw error;
    }
  }

  async findByKey(userId: string, idempotencyKey: string): Promise<StoredOrder | undefined> {
    const [row] = await this.prisma.$queryRaw<OrderRow[]>`
      SELECT ${orderColumns} FROM orders
      WHERE user_id = ${userId}::uuid AND idempotency_key = ${idempotencyKey}`;
    return row ? toStoredOrder(row) : undefined;
  }

  async get(id: string): Promise<StoredOrder> {
    const row = await this.prisma.order.findUnique({ where: { id } });
    if (!row) throw new NotFoundError("order", id);
    return toStoredOrder(row);
  }

  /**
   * Moves an order from `from` to `to`, with its event. When the order is no
   * longer in `from` (another call settled it first), nothing changes and the
   * order is returned as it now is.
   */
  async transition(
    id: string,
    from: OrderStatus,
    to: OrderStatus,
    change: { statusReason?: string; paymentId?: string } = {},
  ): Promise<StoredOrder> {
    return this.prisma.$transaction(async (tx) => {
      // The status test and the change are one statement: of two concurrent
      // transitions from one status, exactly one matches the row.
      const [moved] = await tx.$queryRaw<OrderRow[]>`
        UPDATE orders
        SET status = ${storedStatus(to)}::"OrderStatus",
            status_reason = COALESCE(${change.statusReason ?? null}::text, status_reason),
            payment_id = COALESCE(${change.paymentId ?? null}::text, payment_id),
            updated_at = ${new Date()}
        WHERE id = ${id}::uuid AND status = ${storedStatus(from)}::"OrderStatus"
        RETURNING ${orderColumns}`;
      if (moved === undefined) {
        const [current] = await tx.$queryRaw<OrderRow[]>`
          SELECT ${orderColumns} FROM orders WHERE id = ${id}::uuid`;
        if (current === undefined) throw new NotFoundError("order", id);
        return toStoredOrder(current);
      }
      const stored = toStoredOrder(moved);
      await this.recordEvent(tx, "STATUS_CHANGED", stored.order);
      return stored;
    });
  }

  async list({ userId, status, limit, after }: ListOrdersQuery): Promise<Order[]> {
    const rows = await this.prisma.order.findMany({
      where: {
        ...(userId ? { userId } : {}),
        ...(status !== OrderStatus.UNSPECIFIED ? { status: toStored[status] } : {}),
        ...afterPagePosition(after, "desc"),
      },
      orderBy: [{ createdAt: "desc" }, { id: "desc" }],
      take: limit,
    });
    return rows.map((row) => toStoredOrder(row).order);
  }

  /**
   * Writes the change's event into the outbox, inside the change's
   * transaction. Its time is PostgreSQL's clock read after the outbox lock
   * is taken, so events in cursor order are in time order too, whichever
   * replica wrote them.
   */
  private async recordEvent(
    tx: Prisma.TransactionClient,
    type: OrderEventRow["type"],
    order: Order,
  ): Promise<void> {
    const json = JSON.stringify(toJson(OrderSchema, order));
    await writeToOutbox(
      tx,
      orderEventsChannel,
      () => tx.$executeRaw`
        INSERT INTO order_events (type, order_id, "order", occurred_at)
        VALUES (${type}::"OrderEventType", ${order.id}::uuid, ${json}::jsonb, clock_timestamp())`,
    );
  }
}

function storedStatus(status: OrderStatus): StoredStatus {
  const stored = toStored[status];
  if (stored === undefined) throw new Error(`order status ${status} is not stored`);
  return stored;
}

function toStoredOrder(row: OrderRow): StoredOrder {
  return {
    order: create(OrderSchema, {
      id: row.id,
      userId: row.userId,
      lineItems: (row.lineItems as JsonValue[]).map(
        (item): LineItem => fromJson(LineItemSchema, item),
      ),
      total: create(MoneySchema, {
        currencyCode: row.currencyCode,
        minorUnits: row.totalMinorUnits,
      }),
      status: OrderStatus[row.status],
      paymentId: row.paymentId,
      statusReason: row.statusReason,
      idempotencyKey: row.idempotencyKey,
      createTime: timestampFromDate(row.createdAt),
      updateTime: timestampFromDate(row.updatedAt),
    }),
    fingerprint: row.requestFingerprint,
    paymentToken: row.paymentToken,
  };
}

function toStoredEvent(row: OrderEventRow): StoredOrderEvent {
  return {
    cursor: row.cursor,
    message: create(OrderEventSchema, {
      cursor: row.cursor.toString(),
      type: OrderEventType[row.type],
      order: fromJson(OrderSchema, row.order as JsonValue),
      occurTime: timestampFromDate(row.occurredAt),
    }),
  };
}
