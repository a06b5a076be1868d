/**
 * Placing, settling and cancelling orders: the one place where order-service
 * talks to its neighbours. The rules that keep money safe:
 *
 * - An order is recorded (PENDING) before any money moves, so no charge can
 *   exist without an order that records it.
 * - The charge's idempotency key is derived from the order, so every retry
 *   of CreateOrder asks payment-service for the same charge, and it charges
 *   at most once.
 * - When payment-service does not answer (down, or out of time), the order
 *   says so (PAYMENT_UNCONFIRMED); a retry with the same key settles it.
 * - Cancelling a paid order refunds it first, with a key derived from the
 *   order, so a retried cancel refunds once.
 */

import type { Client } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  callEndedCodes,
  FailedPreconditionError,
  type Logger,
  statusName,
} from "@meridian/platform";
import { type Order, OrderStatus } from "@meridian/proto/meridian/order/v1/order_pb";
import {
  type Payment,
  type PaymentService,
  PaymentStatus,
} from "@meridian/proto/meridian/payment/v1/payment_pb";
import type { UserService } from "@meridian/proto/meridian/user/v1/user_pb";
import { chargeKey, fingerprint, type OrderRequest, priceItems, refundKey } from "./domain.js";
import type { OrderRepository, StoredOrder } from "./repository.js";

export interface OrderWorkflowDeps {
  orders: OrderRepository;
  users: Client<typeof UserService>;
  payments: Client<typeof PaymentService>;
  logger: Logger;
}

export class OrderWorkflow {
  constructor(private readonly deps: OrderWorkflowDeps) {}

  /** CreateOrder: the same request with the same key always ends in the same one order. */
  async place(request: OrderRequest): Promise<Order> {
    const { orders } = this.deps;
    const requested = fingerprint(request);
    let stored = await orders.findByKey(request.userId, request.idempotencyKey);
    if (stored === undefined) {
      await this.requireUser(request.userId);
      const priced = priceItems(request.items);
      stored =
        (await orders.createPending(request, priced, requested)) ??
        // A concurrent retry recorded it first; carry on with that order.
        (await orders.findByKey(request.userId, request.idempotencyKey));
      if (stored === undefined) throw new Error("order vanished after a duplicate-key insert");
    }
    if (stored.fingerprint !== requested) {
      throw new FailedPreconditionError(
        "IDEMPOTENCY_KEY_REUSED",
        `idempotency_key/${request.idempotencyKey}`,
        `idempotency key "${request.idempotencyKey}" was used for a different order (${stored.order.id}); use a new key for a new order`,
      );
    }
    return this.settlePayment(stored);
  }

  async cancel(stored: StoredOrder, reason: string): Promise<Order> {
    const { order } = stored;
    switch (order.status) {
      case OrderStatus.CANCELLED:
        return order;
      case OrderStatus.PENDING:
      case OrderStatus.PAYMENT_UNCONFIRMED:
        throw new FailedPreconditionError(
          "PAYMENT_NOT_SETTLED",
          `orders/${order.id}`,
          `order ${order.id} is still being paid; retry CreateOrder with idempotency key "${order.idempotencyKey}" to settle it, then cancel`,
        );
      case OrderStatus.PAID:
        await this.deps.payments.refund({
          paymentId: order.paymentId,
          idempotencyKey: refundKey(order.id),
          reason: reason || "order cancelled",
        });
        break;
    }
    const cancelled = await this.deps.orders.transition(
      order.id,
      order.status,
      OrderStatus.CANCELLED,
      {
        statusReason: reason ? `cancelled: ${reason}` : "cancelled",
      },
    );
    return cancelled.order;
  }

  /** The user must exist; asked as the caller, so user-service applies its own rules too. */
  private async requireUser(userId: string): Promise<void> {
    try {
      await this.deps.users.getUser({ id: userId });
    } catch (error) {
      if (ConnectError.from(error).code === Code.NotFound) {
        throw new FailedPreconditionError(
          "USER_NOT_FOUND",
          `users/${userId}`,
          `user ${userId} does not exist`,
        );
      }
      throw error;
    }
  }

  /** Charges a PENDING or PAYMENT_UNCONFIRMED order (again); any other order is settled already. */
  private async settlePayment(stored: StoredOrder): Promise<Order> {
    const { order } = stored;
    if (order.status !== OrderStatus.PENDING && order.status !== OrderStatus.PAYMENT_UNCONFIRMED) {
      return order;
    }
    let payment: Payment | undefined;
    try {
      ({ payment } = await this.deps.payments.charge({
        orderId: order.id,
        userId: order.userId,
        amount: order.total,
        paymentToken: stored.paymentToken,
        idempotencyKey: chargeKey(order.id),
      }));
    } catch (error) {
      const failure = ConnectError.from(error);
      if (failure.code === Code.InvalidArgument) {
        // payment-service refused the charge as asked (a malformed payment
        // token, say): the order cannot be paid this way.
        const refused = await this.deps.orders.transition(
          order.id,
          order.status,
          OrderStatus.PAYMENT_FAILED,
          { statusReason: `payment refused: ${failure.rawMessage}` },
        );
        return refused.order;
      }
      // Nobody knows whether payment-service acted: record that; a retry finds out.
      if (!callEndedCodes.has(failure.code)) throw failure;
      const unconfirmed = await this.deps.orders.transition(
        order.id,
        order.status,
        OrderStatus.PAYMENT_UNCONFIRMED,
        {
          statusReason: `payment-service did not confirm the charge (${statusName(failure.code)}: ${failure.rawMessage}); retry CreateOrder with the same idempotency key to settle it`,
        },
      );
      this.deps.logger.warn(
        { orderId: order.id, code: statusName(failure.code) },
        "payment unconfirmed",
      );
      // Out of time or cancelled: the caller gets that error. Unreachable
      // while time remains: the caller gets the order, which says so.
      if (failure.code !== Code.Unavailable) throw failure;
      return unconfirmed.order;
    }
    if (payment === undefined) throw new Error("payment-service answered Charge without a payment");
    const paid = payment.status === PaymentStatus.SUCCEEDED;
    const settled = await this.deps.orders.transition(
      order.id,
      order.status,
      paid ? OrderStatus.PAID : OrderStatus.PAYMENT_FAILED,
      {
        paymentId: payment.id,
        statusReason: paid ? "" : `payment declined: ${payment.declineReason}`,
      },
    );
    return settled.order;
  }
}
