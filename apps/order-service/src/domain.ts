/**
 * The order service's rules, independent of transport and storage: what a
 * valid order request is, how a cart is priced, and when two requests with
 * one idempotency key are the same request.
 */
import { createHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { checkId, type FieldViolation, InvalidArgumentError } from "@meridian/platform";
import { MoneySchema } from "@meridian/proto/meridian/common/v1/common_pb";
import {
  type CartItem,
  type CartProblem,
  CartProblemSchema,
  type LineItem,
  LineItemSchema,
} from "@meridian/proto/meridian/order/v1/order_pb";
import { catalog, catalogCurrency } from "./catalog.js";

export const maxLineItems = 100;
export const maxQuantity = 1000;

export interface OrderRequest {
  userId: string;
  items: { sku: string; quantity: number }[];
  idempotencyKey: string;
  paymentToken: string;
}

export interface PricedCart {
  lineItems: LineItem[];
  currencyCode: string;
  total: bigint;
}

/** A CreateOrder request, checked and normalized; every problem is reported at once. */
export function validateOrderRequest(req: {
  userId: string;
  items: readonly CartItem[];
  idempotencyKey: string;
  paymentToken: string;
}): OrderRequest {
  const violations: FieldViolation[] = [];
  const userId = checkId(req.userId, "user_id", "a user id", violations);
  if (req.items.length === 0) violations.push({ field: "items", description: "must not be empty" });
  if (req.items.length > maxLineItems) {
    violations.push({
      field: "items",
      description: `must have at most ${maxLineItems} entries, got ${req.items.length}`,
    });
  }
  const seen = new Set<string>();
  req.items.forEach((item, i) => {
    const problem = itemProblem(item.sku, item.quantity, 1);
    if (problem)
      violations.push({ field: `items[${i}].${problem.field}`, description: problem.message });
    else if (seen.has(item.sku)) {
      violations.push({
        field: `items[${i}].sku`,
        description: `"${item.sku}" appears more than once; give each SKU once with its total quantity`,
      });
    }
    seen.add(item.sku);
  });
  const idempotencyKey = req.idempotencyKey.trim();
  if (idempotencyKey === "") {
    violations.push({
      field: "idempotency_key",
      description:
        "must not be empty: choose one per intended order (a UUID, say) and reuse it on retries",
    });
  } else if (idempotencyKey.length > 200) {
    violations.push({
      field: "idempotency_key",
      description: `must be at most 200 characters, got ${idempotencyKey.length}`,
    });
  }
  const paymentToken = req.paymentToken.trim();
  if (paymentToken === "")
    violations.push({ field: "payment_token", description: "must not be empty" });
  if (violations.length > 0) throw new InvalidArgumentError(violations);
  return {
    userId,
    items: req.items.map(({ sku, quantity }) => ({ sku, quantity })),
    idempotencyKey,
    paymentToken,
  };
}

/** What is wrong with one cart line, if anything; `minQuantity` is 0 where 0 means "remove". */
function itemProblem(
  sku: string,
  quantity: number,
  minQuantity: 0 | 1,
): { field: "sku" | "quantity"; message: string } | undefined {
  if (sku === "") return { field: "sku", message: "must not be empty" };
  if (!catalog.has(sku)) {
    return {
      field: "sku",
      message: `"${sku.slice(0, 80)}" is not in the catalog; known SKUs: ${[...catalog.keys()].join(", ")}`,
    };
  }
  if (quantity < minQuantity || quantity > maxQuantity) {
    return {
      field: "quantity",
      message: `must be ${minQuantity} to ${maxQuantity}, got ${quantity}`,
    };
  }
  return undefined;
}

/** Prices validated items from the catalog. */
export function priceItems(items: readonly { sku: string; quantity: number }[]): PricedCart {
  let total = 0n;
  const lineItems = items.map(({ sku, quantity }) => {
    const product = catalog.get(sku);
    if (product === undefined) throw InvalidArgumentError.field("items", `unknown SKU "${sku}"`);
    const lineTotal = product.unitPrice * BigInt(quantity);
    total += lineTotal;
    return create(LineItemSchema, {
      sku,
      description: product.description,
      quantity,
      unitPrice: money(product.unitPrice),
      lineTotal: money(lineTotal),
    });
  });
  return { lineItems, currencyCode: catalogCurrency, total };
}

export function money(minorUnits: bigint) {
  return create(MoneySchema, { currencyCode: catalogCurrency, minorUnits });
}

/**
 * What identifies a request behind an idempotency key. A retry must ask for
 * the same thing; reusing a key for a different order is refused.
 */
export function fingerprint(request: OrderRequest): string {
  return createHash("sha256")
    .update(JSON.stringify([request.userId, request.items, request.paymentToken]))
    .digest("base64url");
}

/** The payment's idempotency key, derived from the order so that every retry reuses it. */
export function chargeKey(orderId: string): string {
  return `order/${orderId}/charge`;
}

export function refundKey(orderId: string): string {
  return `order/${orderId}/refund`;
}

/** A QuoteCart session: the cart so far, changed one message at a time. */
export class Cart {
  private readonly quantities = new Map<string, number>();
  private revision = 0;

  setItem(sku: string, quantity: number): CartProblem[] {
    this.revision++;
    const problem = itemProblem(sku, quantity, 0);
    if (problem)
      return [create(CartProblemSchema, { sku, message: `${problem.field} ${problem.message}` })];
    if (quantity === 0) this.quantities.delete(sku);
    else if (!this.quantities.has(sku) && this.quantities.size >= maxLineItems) {
      return [
        create(CartProblemSchema, { sku, message: `a cart holds at most ${maxLineItems} SKUs` }),
      ];
    } else this.quantities.set(sku, quantity);
    return [];
  }

  clear(): void {
    this.revision++;
    this.quantities.clear();
  }

  /** A change message that carried nothing. */
  reject(message: string): CartProblem[] {
    this.revision++;
    return [create(CartProblemSchema, { message })];
  }

  quote(problems: CartProblem[]) {
    const { lineItems, total } = priceItems(
      [...this.quantities].map(([sku, quantity]) => ({ sku, quantity })),
    );
    return { revision: this.revision, lineItems, total: money(total), problems };
  }
}
