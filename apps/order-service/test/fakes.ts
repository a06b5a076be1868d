/**
 * In-memory stand-ins for order-service's neighbours, served through
 * createRouterTransport: real Connect handlers and interceptors, no network.
 * They record what order-service sent (requests, deadlines, credentials) so
 * tests can assert on it.
 */
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  createRouterTransport,
  type HandlerContext,
} from "@connectrpc/connect";
import { type ConnectNeighbour, neighbourInterceptors } from "@meridian/platform";
import {
  type ChargeRequest,
  type Payment,
  PaymentSchema,
  PaymentService,
  PaymentStatus,
  type RefundRequest,
} from "@meridian/proto/meridian/payment/v1/payment_pb";
import { UserSchema, UserService } from "@meridian/proto/meridian/user/v1/user_pb";

export interface SeenCall<R> {
  request: R;
  /** Milliseconds the call had left when it arrived, if it had a deadline. */
  timeoutMs: number | undefined;
  authorization: string | null;
}

function seen<R>(request: R, context: HandlerContext): SeenCall<R> {
  return {
    request,
    timeoutMs: context.timeoutMs(),
    authorization: context.requestHeader.get("authorization"),
  };
}

export class FakeUsers {
  readonly existing = new Set<string>();
  readonly calls: SeenCall<{ id: string }>[] = [];
}

export type PaymentBehaviour = "normal" | "unavailable" | "hang";

export class FakePayments {
  behaviour: PaymentBehaviour = "normal";
  readonly charges: SeenCall<ChargeRequest>[] = [];
  readonly refunds: SeenCall<RefundRequest>[] = [];
  /** Payments by idempotency key, as payment-service keeps them. */
  readonly byKey = new Map<string, Payment>();

  /** How many charges actually moved money. */
  get succeeded(): number {
    return [...this.byKey.values()].filter((p) => p.status === PaymentStatus.SUCCEEDED).length;
  }
}

/** A `connect` for startOrderService that wires both fakes with the real neighbour interceptors. */
export function connectToFakes(users: FakeUsers, payments: FakePayments): ConnectNeighbour {
  return (options) =>
    createRouterTransport(
      ({ service }) => {
        service(UserService, {
          getUser(req, context) {
            users.calls.push(seen({ id: req.id }, context));
            if (!users.existing.has(req.id)) {
              throw new ConnectError(`user "${req.id}" not found`, Code.NotFound);
            }
            return { user: create(UserSchema, { id: req.id, email: `${req.id}@example.com` }) };
          },
        });
        service(PaymentService, {
          async charge(req, context) {
            payments.charges.push(seen(req, context));
            if (payments.behaviour === "unavailable") {
              throw new ConnectError("payment processor unreachable", Code.Unavailable);
            }
            if (payments.behaviour === "hang") {
              await new Promise((_, reject) =>
                context.signal.addEventListener("abort", () => reject(context.signal.reason)),
              );
            }
            const existing = payments.byKey.get(req.idempotencyKey);
            if (existing) return { payment: existing };
            const declined = req.paymentToken === "tok_declined";
            const payment = create(PaymentSchema, {
              id: randomUUID(),
              orderId: req.orderId,
              userId: req.userId,
              amount: req.amount,
              status: declined ? PaymentStatus.DECLINED : PaymentStatus.SUCCEEDED,
              declineReason: declined ? "the card was declined" : "",
              idempotencyKey: req.idempotencyKey,
              createTime: timestampNow(),
            });
            payments.byKey.set(req.idempotencyKey, payment);
            return { payment };
          },
          refund(req, context) {
            payments.refunds.push(seen(req, context));
            const payment = [...payments.byKey.values()].find((p) => p.id === req.paymentId);
            if (!payment) throw new ConnectError("no such payment", Code.NotFound);
            payment.status = PaymentStatus.REFUNDED;
            payment.refundedAmount = payment.amount;
            return { payment };
          },
        });
      },
      { transport: { interceptors: neighbourInterceptors(options) } },
    );
}
