import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../src/errors.js";
import { checkId, isUuid, validateId } from "../src/ids.js";

const id = "8F0C4A52-7D0E-4C0E-9D5E-2B1A3C4D5E6F";

describe("ids", () => {
  it("accept a UUID in any case and return it lower-cased", () => {
    expect(isUuid(id)).toBe(true);
    expect(validateId(id, "id", "a user id")).toBe(id.toLowerCase());
  });

  it("name the field and what it should hold", () => {
    const violations: { field: string; description: string }[] = [];
    checkId("42", "order_id", "an order id", violations);
    checkId("", "user_id", "a user id", violations);
    checkId("", "payment_id", "a payment id", violations, false);
    expect(violations).toEqual([
      { field: "order_id", description: 'must be an order id (a UUID), got "42"' },
      { field: "user_id", description: "must not be empty" },
    ]);
    expect(() => validateId("nope", "id", "a payment id")).toThrow(InvalidArgumentError);
  });
});
