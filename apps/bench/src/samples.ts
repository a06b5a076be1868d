/**
 * Messages as the services send them, filled in the way real ones are: the
 * unary bench answers with `sampleUser`, the payload bench measures all three.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type ListOrdersResponse,
  ListOrdersResponseSchema,
  type Order,
  OrderSchema,
  OrderStatus,
} from "@meridian/proto/meridian/order/v1/order_pb";
import { type User, UserRole, UserSchema } from "@meridian/proto/meridian/user/v1/user_pb";

const created = timestampFromDate(new Date("2025-03-14T09:26:53.589Z"));
const updated = timestampFromDate(new Date("2025-03-14T09:26:54.112Z"));

export const sampleUser: User = create(UserSchema, {
  id: "8f0c4a52-7d0e-4c0e-9d5e-2b1a3c4d5e6f",
  email: "ada.lovelace@example.com",
  name: "Ada Lovelace",
  department: "Analytical Engines",
  role: UserRole.CUSTOMER,
  createTime: created,
  updateTime: updated,
});

const euros = (minorUnits: bigint) => ({ currencyCode: "EUR", minorUnits });
const line = (sku: string, description: string, quantity: number, unitPrice: bigint) => ({
  sku,
  description,
  quantity,
  unitPrice: euros(unitPrice),
  lineTotal: euros(unitPrice * BigInt(quantity)),
});

function sampleOrderNumbered(n: number): Order {
  const hex = n.toString(16).padStart(12, "0");
  return create(OrderSchema, {
    id: `0b7e3f2a-5c1d-4e8f-9a6b-${hex}`,
    userId: sampleUser.id,
    lineItems: [
      line("MUG-001", "Meridian mug", 2, 12_00n),
      line("TEE-002", "Meridian T-shirt", 1, 25_00n),
      line("STICKER-004", "Sticker pack", 3, 3_50n),
    ],
    total: euros(59_50n),
    status: OrderStatus.PAID,
    paymentId: `c4d2a9e1-3b7f-4a60-8e15-${hex}`,
    idempotencyKey: `checkout-${hex}`,
    createTime: created,
    updateTime: updated,
  });
}

/** An order with three line items, paid. */
export const sampleOrder: Order = sampleOrderNumbered(1);

/** A full default page of ListOrders: 50 such orders and a next-page token. */
export const sampleOrderPage: ListOrdersResponse = create(ListOrdersResponseSchema, {
  orders: Array.from({ length: 50 }, (_, i) => sampleOrderNumbered(i + 1)),
  nextPageToken: "eyJjcmVhdGVUaW1lIjoiMjAyNS0wMy0xNFQwOToyNjo1My41ODlaIiwiaWQiOiIwYjdlIn0",
});
