/**
 * List pagination: validated page sizes and opaque page tokens.
 *
 * A token is base64url JSON that the service alone reads. Clients must treat
 * it as opaque; the service can change what is inside without breaking them.
 * It records the filter it was issued for, so that a token replayed with a
 * different filter is refused instead of silently returning the wrong page.
 */
import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import { InvalidArgumentError } from "./errors.js";

export const defaultPageSize = 50;
export const maxPageSize = 1000;

export function parsePageSize(pageSize: number, field = "page_size"): number {
  if (pageSize === 0) return defaultPageSize;
  if (pageSize < 0 || pageSize > maxPageSize) {
    throw InvalidArgumentError.field(
      field,
      `must be between 1 and ${maxPageSize} (or 0 for the default of ${defaultPageSize}), got ${pageSize}`,
    );
  }
  return pageSize;
}

export function encodePageToken(position: readonly string[], filter: string): string {
  return Buffer.from(JSON.stringify({ v: 1, p: position, f: filter })).toString("base64url");
}

/** The position a token resumes after, or undefined for the first page. */
export function decodePageToken(
  token: string,
  filter: string,
  field = "page_token",
): string[] | undefined {
  if (token === "") return undefined;
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    decoded = undefined;
  }
  const valid =
    typeof decoded === "object" &&
    decoded !== null &&
    "v" in decoded &&
    decoded.v === 1 &&
    "p" in decoded &&
    Array.isArray(decoded.p) &&
    decoded.p.every((part) => typeof part === "string") &&
    "f" in decoded;
  if (!valid) {
    throw InvalidArgumentError.field(
      field,
      "is not a page token from a previous response; omit it to start at the first page",
    );
  }
  const { p, f } = decoded as { p: string[]; f: unknown };
  if (f !== filter) {
    throw InvalidArgumentError.field(
      field,
      "was issued for a different filter; repeat the filter of the request that returned it",
    );
  }
  return p;
}

/**
 * Every List sorts by (create_time, id): where a page ends is its last
 * item's pair, which goes into the next page token.
 */
export function pagePosition(item: { createTime?: Timestamp; id: string }): string[] {
  return [item.createTime ? timestampDate(item.createTime).toISOString() : "", item.id];
}

/**
 * The `where` condition (for Prisma) that resumes a list sorted by
 * (createdAt, id) after a page position: strictly later in the sort order,
 * ties on createdAt broken by id. Empty for the first page.
 */
export function afterPagePosition(
  position: readonly string[] | undefined,
  order: "asc" | "desc",
): {
  OR?: (
    | { createdAt: { gt: Date } | { lt: Date } }
    | { createdAt: Date; id: { gt: string } | { lt: string } }
  )[];
} {
  const [time, id] = position ?? [];
  if (!time || !id) return {};
  const at = new Date(time);
  return order === "asc"
    ? { OR: [{ createdAt: { gt: at } }, { createdAt: at, id: { gt: id } }] }
    : { OR: [{ createdAt: { lt: at } }, { createdAt: at, id: { lt: id } }] };
}
