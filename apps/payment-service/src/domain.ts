/**
 * The payment service's rules, independent of transport and storage: what a
 * valid charge, refund and amount of money are, and what makes two requests
 * "the same" for idempotency.
 */
import { createHash } from "node:crypto";
import { checkId, type FieldViolation, InvalidArgumentError, validateId } from "@meridian/platform";
import type { Money } from "@meridian/proto/meridian/common/v1/common_pb";
import { PaymentStatus } from "@meridian/proto/meridian/payment/v1/payment_pb";
import { paymentTokenPattern } from "./processor.js";

/** An amount of money, validated: a currency and a positive number of its minor units. */
export interface Amount {
  currencyCode: string;
  minorUnits: bigint;
}

export interface NewCharge {
  orderId: string;
  userId: string;
  amount: Amount;
  paymentToken: string;
  idempotencyKey: string;
}

export interface NewRefund {
  paymentId: string;
  /** Undefined: whatever has not been refunded yet. */
  amount: Amount | undefined;
  idempotencyKey: string;
  reason: string;
}

export interface PaymentFilter {
  /** "" means any. */
  orderId: string;
  userId: string;
  status: PaymentStatus;
}

/** The largest single charge: 1,000,000.00 in a two-decimal currency. */
export const maxAmountMinorUnits = 100_000_000n;
export const maxIdempotencyKeyLength = 255;
export const maxRefundReasonLength = 500;

const currencyPattern = /^[A-Z]{3}$/;

function checkAmount(
  money: Money | undefined,
  field: string,
  violations: FieldViolation[],
): Amount | undefined {
  if (money === undefined) {
    violations.push({ field, description: "is required" });
    return undefined;
  }
  const before = violations.length;
  if (!currencyPattern.test(money.currencyCode)) {
    violations.push({
      field: `${field}.currency_code`,
      description: `must be an ISO 4217 currency code of three upper-case letters like "EUR", got "${money.currencyCode.slice(0, 20)}"`,
    });
  }
  if (money.minorUnits <= 0n) {
    violations.push({
      field: `${field}.minor_units`,
      description: `must be positive, got ${money.minorUnits}`,
    });
  } else if (money.minorUnits > maxAmountMinorUnits) {
    violations.push({
      field: `${field}.minor_units`,
      description: `must be at most ${maxAmountMinorUnits}, got ${money.minorUnits}`,
    });
  }
  if (violations.length > before) return undefined;
  return { currencyCode: money.currencyCode, minorUnits: money.minorUnits };
}

function checkIdempotencyKey(key: string, violations: FieldViolation[]): string {
  if (key === "") {
    violations.push({
      field: "idempotency_key",
      description: "must not be empty; send one unique key (a UUID, say) per intended operation",
    });
  } else if (key.length > maxIdempotencyKeyLength) {
    violations.push({
      field: "idempotency_key",
      description: `must be at most ${maxIdempotencyKeyLength} characters, got ${key.length}`,
    });
  }
  return key;
}

function checkPaymentToken(token: string, violations: FieldViolation[]): string {
  if (token === "") {
    violations.push({ field: "payment_token", description: "must not be empty" });
  } else if (!paymentTokenPattern.test(token)) {
    // The token is not echoed: error messages end up in logs.
    violations.push({
      field: "payment_token",
      description:
        'must be a payment token: "tok_" then 1 to 64 lower-case letters, digits or underscores',
    });
  }
  return token;
}

interface ChargeInput {
  orderId: string;
  userId: string;
  amount?: Money | undefined;
  paymentToken: string;
  idempotencyKey: string;
}

/** A charge request, validated; every problem is reported at once. */
export function validateCharge(input: ChargeInput): NewCharge {
  const violations: FieldViolation[] = [];
  const charge = {
    orderId: checkId(input.orderId, "order_id", "an order id", violations),
    userId: checkId(input.userId, "user_id", "a user id", violations),
    amount: checkAmount(input.amount, "amount", violations),
    paymentToken: checkPaymentToken(input.paymentToken, violations),
    idempotencyKey: checkIdempotencyKey(input.idempotencyKey, violations),
  };
  if (violations.length > 0 || charge.amount === undefined) {
    throw new InvalidArgumentError(violations);
  }
  return { ...charge, amount: charge.amount };
}

interface RefundInput {
  paymentId: string;
  amount?: Money | undefined;
  idempotencyKey: string;
  reason: string;
}

/** A refund request, validated; every problem is reported at once. */
export function validateRefund(input: RefundInput): NewRefund {
  const violations: FieldViolation[] = [];
  const paymentId = checkId(input.paymentId, "payment_id", "a payment id", violations);
  const amount =
    input.amount === undefined ? undefined : checkAmount(input.amount, "amount", violations);
  const idempotencyKey = checkIdempotencyKey(input.idempotencyKey, violations);
  const reason = input.reason.trim();
  if (reason === "") {
    violations.push({ field: "reason", description: "must say why the money goes back" });
  } else if (reason.length > maxRefundReasonLength) {
    violations.push({
      field: "reason",
      description: `must be at most ${maxRefundReasonLength} characters, got ${reason.length}`,
    });
  }
  if (violations.length > 0) throw new InvalidArgumentError(violations);
  return { paymentId, amount, idempotencyKey, reason };
}

export function validatePaymentId(id: string, field = "id"): string {
  return validateId(id, field, "a payment id");
}

const knownStatuses = new Set(
  Object.values(PaymentStatus).filter((v): v is PaymentStatus => typeof v === "number"),
);

/** The filters of ListPayments and WatchPayments (status only for the former). */
export function validateFilter(input: {
  orderId: string;
  userId: string;
  status?: PaymentStatus;
}): PaymentFilter {
  const violations: FieldViolation[] = [];
  const status = input.status ?? PaymentStatus.UNSPECIFIED;
  const filter = {
    orderId: checkId(input.orderId, "order_id", "an order id", violations, false),
    userId: checkId(input.userId, "user_id", "a user id", violations, false),
    status,
  };
  if (!knownStatuses.has(status)) {
    violations.push({ field: "status", description: `is not a payment status: ${status}` });
  }
  if (violations.length > 0) throw new InvalidArgumentError(violations);
  return filter;
}

function fingerprint(parts: readonly string[]): string {
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex");
}

/** Two charges are the same request when these match; the token is hashed, never stored. */
export function chargeFingerprint(charge: NewCharge): string {
  return fingerprint([
    "charge",
    charge.orderId,
    charge.userId,
    charge.amount.currencyCode,
    charge.amount.minorUnits.toString(),
    charge.paymentToken,
  ]);
}

/**
 * Two refunds are the same request when they name the same payment and the
 * same amount ("the rest" included, as asked, not as computed). The reason
 * is free text and does not count.
 */
export function refundFingerprint(refund: NewRefund): string {
  return fingerprint([
    "refund",
    refund.paymentId,
    refund.amount ? `${refund.amount.currencyCode} ${refund.amount.minorUnits}` : "rest",
  ]);
}
