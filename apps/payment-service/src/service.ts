import type { ServiceImpl } from "@connectrpc/connect";
import {
  decodePageToken,
  type EventFeed,
  encodePageToken,
  isAdmin,
  isUuid,
  PermissionDeniedError,
  type Principal,
  pagePosition,
  parsePageSize,
  parseResumeCursor,
  principalOf,
  requireServiceOrAdmin,
  scopeToCaller,
  watchResponses,
} from "@meridian/platform";
import type { Payment, PaymentService } from "@meridian/proto/meridian/payment/v1/payment_pb";
import {
  chargeFingerprint,
  refundFingerprint,
  validateCharge,
  validateFilter,
  validatePaymentId,
  validateRefund,
} from "./domain.js";
import type { PaymentProcessor } from "./processor.js";
import { type PaymentRepository, replayCharge, type StoredPaymentEvent } from "./repository.js";

/** The services that may charge and refund, and read every payment. */
export const paymentCallers: readonly string[] = ["order-service"];

export interface PaymentServiceDeps {
  payments: PaymentRepository;
  feed: EventFeed<StoredPaymentEvent>;
  processor: PaymentProcessor;
}

export function createPaymentService({
  payments,
  feed,
  processor,
}: PaymentServiceDeps): ServiceImpl<typeof PaymentService> {
  return {
    async charge(req, context) {
      requireServiceOrAdmin(context, paymentCallers, "charge payments");
      const charge = validateCharge(req);
      const fingerprint = chargeFingerprint(charge);
      // A retry of a charge already recorded (declined ones included) never reaches the processor.
      const earlier = await payments.findCharge(charge.idempotencyKey);
      if (earlier !== null) return { payment: replayCharge(earlier, fingerprint) };
      // If the caller cancels or runs out of time while the processor thinks,
      // this throws and nothing is recorded; the caller's retry with the same
      // key is then a new attempt, which the processor's own idempotency (by
      // the same key) keeps from charging twice. Once the processor has
      // answered, the outcome is recorded even if the caller has gone.
      const outcome = await processor.charge(
        {
          idempotencyKey: charge.idempotencyKey,
          currencyCode: charge.amount.currencyCode,
          minorUnits: charge.amount.minorUnits,
          paymentToken: charge.paymentToken,
        },
        context.signal,
      );
      return { payment: await payments.recordCharge(charge, fingerprint, outcome) };
    },

    async refund(req, context) {
      requireServiceOrAdmin(context, paymentCallers, "refund payments");
      // The simulated processor refunds instantly and cannot fail, so it is
      // not called. A real one would be called here with the refund's
      // idempotency key, between recording the refund as pending and
      // completing it, never while holding the payment's row lock.
      const refund = validateRefund(req);
      return { payment: await payments.refund(refund, refundFingerprint(refund)) };
    },

    async getPayment(req, context) {
      const principal = principalOf(context);
      const payment = await payments.get(validatePaymentId(req.id));
      if (!readsEveryPayment(principal) && !isOwner(principal, payment)) {
        throw new PermissionDeniedError(
          `payment ${payment.id} belongs to another user; customers may only see their own payments`,
        );
      }
      return { payment };
    },

    async listPayments(req, context) {
      const requested = validateFilter(req);
      const filter = {
        ...requested,
        userId: scopeToCaller(context, requested.userId, "list payments", paymentCallers),
      };
      const limit = parsePageSize(req.pageSize);
      const filterKey = JSON.stringify([filter.orderId, filter.userId, filter.status]);
      const after = decodePageToken(req.pageToken, filterKey);
      // A person whose id is not a UUID (a token from some other user store) owns no payment.
      if (filter.userId !== "" && !isUuid(filter.userId)) return { payments: [] };
      // One extra row tells whether there is a next page without a count query.
      const page = await payments.list({ ...filter, after, limit: limit + 1 });
      const last = page.length > limit ? page[limit - 1] : undefined;
      return {
        payments: page.slice(0, limit),
        nextPageToken: last ? encodePageToken(pagePosition(last), filterKey) : "",
      };
    },

    async *watchPayments(req, context) {
      const { orderId, userId: requestedUserId } = validateFilter(req);
      const userId = scopeToCaller(context, requestedUserId, "watch payments", paymentCallers);
      const after = parseResumeCursor(req.resumeCursor);
      const filter = (event: StoredPaymentEvent) =>
        (orderId === "" || event.orderId === orderId) && (userId === "" || event.userId === userId);
      yield* watchResponses(feed.watch({ after, signal: context.signal, filter }));
    },
  };
}

/** Admins and the payment callers read every payment. */
function readsEveryPayment(principal: Principal): boolean {
  return (
    isAdmin(principal) ||
    (principal.kind === "service" && paymentCallers.includes(principal.service))
  );
}

function isOwner(principal: Principal, payment: Payment): boolean {
  return principal.kind === "user" && principal.userId === payment.userId;
}
