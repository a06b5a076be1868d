/**
 * Storage of orders and of their change events (the WatchOrders outbox).
 * Every change and its event commit in one transaction, or neither does.
 */
import { randomUUID } from "node:crypto";
import { create, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  afterPagePosition,
  type EventSource,
  isUniqueViolation,
  NotFoundError,
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
import type {
  OrderEvent as OrderEventRow,
  Order as OrderRow,
  Prisma,
  PrismaClient,
  OrderStatus as StoredStatus,
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

export class OrderRepository {
  /** The order_events outbox, for the WatchOrders feed. */
  readonly events: EventSource<StoredOrderEvent>;

  constructor(private readonly prisma: PrismaClient) {
    this.events = outboxSource(prisma.orderEvent, toStoredEvent);
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
    try {
      return await this.prisma.$transaction(async (tx) => {
        const row = await tx.order.create({
          data: {
            id: randomUUID(),
            userId: request.userId,
            idempotencyKey: request.idempotencyKey,
            requestFingerprint: fingerprint,
            status: "PENDING",
            lineItems: priced.lineItems.map((item) =>
              toJson(LineItemSchema, item),
            ) as Prisma.InputJsonValue,
            currencyCode: priced.currencyCode,
            totalMinorUnits: priced.total,
            paymentToken: request.paymentToken,
          },
        });
        await this.recordEvent(tx, "CREATED", row);
        return toStoredOrder(row);
      });
    } catch (error) {
      if (isUniqueViolation(error)) return undefined;
      throw error;
    }
  }

  async findByKey(userId: string, idempotencyKey: string): Promise<StoredOrder | undefined> {
    const row = await this.prisma.order.findUnique({
      where: { userId_idempotencyKey: { userId, idempotencyKey } },
    });
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
      const { count } = await tx.order.updateMany({
        where: { id, status: toStored[from] },
        data: { status: toStored[to], ...change },
      });
      const row = await tx.order.findUniqueOrThrow({ where: { id } });
      if (count === 1) await this.recordEvent(tx, "STATUS_CHANGED", row);
      return toStoredOrder(row);
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

  private async recordEvent(
    tx: Prisma.TransactionClient,
    type: OrderEventRow["type"],
    row: OrderRow,
  ): Promise<void> {
    const { order } = toStoredOrder(row);
    await writeToOutbox(tx, orderEventsChannel, () =>
      tx.orderEvent.create({
        data: { type, orderId: row.id, order: toJson(OrderSchema, order) as Prisma.InputJsonValue },
      }),
    );
  }
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
