/**
 * What Meridian sells, at what price. A real system would read this from a
 * catalog service; a fixed list keeps the demo self-contained while still
 * making prices the server's decision, never the client's.
 */
export interface Product {
  sku: string;
  description: string;
  /** In the catalog's currency's minor units (cents). */
  unitPrice: bigint;
}

export const catalogCurrency = "EUR";

export const catalog: ReadonlyMap<string, Product> = new Map(
  [
    { sku: "MUG-001", description: "Meridian mug", unitPrice: 12_00n },
    { sku: "TEE-002", description: "Meridian T-shirt", unitPrice: 25_00n },
    { sku: "HOOD-003", description: "Meridian hoodie", unitPrice: 55_00n },
    { sku: "STICKER-004", description: "Sticker pack", unitPrice: 3_50n },
    { sku: "BOOK-005", description: "gRPC in practice (book)", unitPrice: 42_00n },
    { sku: "KEYBOARD-006", description: "Mechanical keyboard", unitPrice: 149_00n },
    // Dear enough that the simulated payment processor declines it (its card
    // limit is 50,000.00): the demo's "declined" order.
    { sku: "SERVER-999", description: "Rack server", unitPrice: 60_000_00n },
  ].map((product) => [product.sku, product]),
);
