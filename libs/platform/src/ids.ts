/**
 * Resource ids: every Meridian id is a UUID, stored lower-case. One check,
 * with one message a person can act on, for every field that holds an id.
 */
import { type FieldViolation, InvalidArgumentError } from "./errors.js";

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return uuidPattern.test(value);
}

/**
 * Checks an id field, adding a violation when it is empty (and `required`)
 * or not a UUID; `what` names it for the message ("a user id"). Returns the
 * id lower-cased, as ids are stored.
 */
export function checkId(
  value: string,
  field: string,
  what: string,
  violations: FieldViolation[],
  required = true,
): string {
  if (value === "") {
    if (required) violations.push({ field, description: "must not be empty" });
    return "";
  }
  if (!isUuid(value)) {
    violations.push({
      field,
      description: `must be ${what} (a UUID), got "${value.slice(0, 80)}"`,
    });
  }
  return value.toLowerCase();
}

/** One required id field, or INVALID_ARGUMENT saying what is wrong with it. */
export function validateId(value: string, field: string, what: string): string {
  const violations: FieldViolation[] = [];
  const id = checkId(value, field, what, violations);
  if (violations.length > 0) throw new InvalidArgumentError(violations);
  return id;
}
