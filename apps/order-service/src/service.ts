/**
 * meridian.order.v1.OrderService over Connect: checks who may do what, turns
 * requests into workflow and repository calls, and results into responses.
 */

import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  decodePageToken,
  type EventFeed,
  encodePageToken,
  InvalidArgumentError,
  pagePosition,
  parsePageSize,
  parseResumeCursor,
  principalOf,
  requireSelfOrAdmin,
  scopeToCaller,
  validateId,
  watchResponses,
} from "@meridian/platform";
import { type OrderService, OrderStatus } from "@meridian/proto/meridian/order/v1/order_pb";
import { Cart, validateOrderRequest } from "./domain.js";
import type { OrderWorkflow } from "./orders.js";
import type { OrderRepository, StoredOrderEvent } from "./repository.js";

export interface OrderServiceDeps {
  orders: OrderRepository;
  workflow: OrderWorkflow;
  feed: EventFeed<StoredOrderEvent>;
}

export function createOrderService({
  orders,
  workflow,
  feed,
}: OrderServiceDeps): ServiceImpl<typeof OrderService> {
  return {
    async createOrder(req, context) {
      const request = validateOrderRequest(req);
      requireSelfOrAdmin(context, request.userId, `place orders for user ${request.userId}`);
      return { order: await workflow.place(request) };
    },

    async getOrder(req, context) {
      const { order } = await orders.get(validateId(req.id, "id", "an order id"));
      requireSelfOrAdmin(context, order.userId, `read order ${order.id}`);
      return { order };
    },

    async listOrders(req, context) {
      const { userId, status } = orderFilter(context, req, "list the orders");
      const limit = parsePageSize(req.pageSize);
      const filter = `${userId}/${status}`;
      const after = decodePageToken(req.pageToken, filter);
      const page = await orders.list({ userId, status, after, limit: limit + 1 });
      const last = page.length > limit ? page[limit - 1] : undefined;
      return {
        orders: page.slice(0, limit),
        nextPageToken: last ? encodePageToken(pagePosition(last), filter) : "",
      };
    },

    async cancelOrder(req, context) {
      const stored = await orders.get(validateId(req.id, "id", "an order id"));
      requireSelfOrAdmin(context, stored.order.userId, `cancel order ${stored.order.id}`);
      if (req.reason.length > 500) {
        throw InvalidArgumentError.field(
          "reason",
          `must be at most 500 characters, got ${req.reason.length}`,
        );
      }
      return { order: await workflow.cancel(stored, req.reason.trim()) };
    },

    async *watchOrders(req, context) {
      const { userId, status } = orderFilter(context, req, "watch the orders");
      const after = parseResumeCursor(req.resumeCursor);
      yield* watchResponses(
        feed.watch({
          after,
          signal: context.signal,
          filter: ({ message: { order } }) =>
            (userId === "" || order?.userId === userId) &&
            (status === OrderStatus.UNSPECIFIED || order?.status === status),
        }),
      );
    },

    async *quoteCart(requests, context) {
      principalOf(context);
      const cart = new Cart();
      for await (const { change } of requests) {
        switch (change.case) {
          case "setItem":
            yield cart.quote(cart.setItem(change.value.sku, change.value.quantity));
            break;
          case "clear":
            cart.clear();
            yield cart.quote([]);
            break;
          default:
            yield cart.quote(cart.reject("the change set neither set_item nor clear"));
        }
      }
    },
  };
}

/**
 * The user and status a List or Watch covers: customers only their own
 * orders, admins anyone's (or everyone's).
 */
function orderFilter(
  context: HandlerContext,
  req: { userId: string; status: OrderStatus },
  what: string,
): { userId: string; status: OrderStatus } {
  const requested = req.userId === "" ? "" : validateId(req.userId, "user_id", "a user id");
  const userId = scopeToCaller(context, requested, what);
  if (OrderStatus[req.status] === undefined) {
    throw InvalidArgumentError.field("status", `is not a known order status: ${req.status}`);
  }
  return { userId, status: req.status };
}
