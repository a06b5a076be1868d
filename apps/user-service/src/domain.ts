/**
 * The user service's rules, independent of transport and storage: what a
 * valid user is, and which fields an update may touch.
 */
import { type FieldViolation, InvalidArgumentError, validateId } from "@meridian/platform";

export interface UserFields {
  email: string;
  name: string;
  department: string;
}

export type UserPatch = Partial<UserFields>;

export const updatableFields = ["email", "name", "department"] as const;

const emailPattern = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Emails are unique case-insensitively, so they are stored lower-cased. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

function checkField(
  field: keyof UserFields,
  value: string,
  violations: FieldViolation[],
  prefix: string,
): string {
  const path = `${prefix}${field}`;
  switch (field) {
    case "email": {
      const email = normalizeEmail(value);
      if (email === "") violations.push({ field: path, description: "must not be empty" });
      else if (email.length > 254 || !emailPattern.test(email)) {
        violations.push({
          field: path,
          description: `must be an email address like name@example.com, got "${value.slice(0, 80)}"`,
        });
      }
      return email;
    }
    case "name": {
      const name = value.trim();
      if (name === "") violations.push({ field: path, description: "must not be empty" });
      else if (name.length > 200) {
        violations.push({
          field: path,
          description: `must be at most 200 characters, got ${name.length}`,
        });
      }
      return name;
    }
    case "department": {
      const department = value.trim();
      if (department.length > 100) {
        violations.push({
          field: path,
          description: `must be at most 100 characters, got ${department.length}`,
        });
      }
      return department;
    }
  }
}

export interface NewAccount {
  fields: UserFields;
  /** Absent when the user may not sign in (an import without a password). */
  password?: string;
}

/**
 * A new user's fields, normalized, and their password; every problem is
 * reported at once. Passwords are kept exactly as given (no trimming).
 */
export function validateNewAccount(
  input: UserFields & { password: string },
  { passwordRequired }: { passwordRequired: boolean },
): NewAccount {
  const violations: FieldViolation[] = [];
  const fields = {
    email: checkField("email", input.email, violations, ""),
    name: checkField("name", input.name, violations, ""),
    department: checkField("department", input.department, violations, ""),
  };
  const { password } = input;
  if (password === "") {
    if (passwordRequired) violations.push({ field: "password", description: "must not be empty" });
  } else if (password.length < 8 || password.length > 200) {
    violations.push({
      field: "password",
      description: `must be 8 to 200 characters, got ${password.length}`,
    });
  }
  if (violations.length > 0) throw new InvalidArgumentError(violations);
  return password === "" ? { fields } : { fields, password };
}

/** The fields named by an update mask, validated and normalized. */
export function validatePatch(input: UserFields, maskPaths: readonly string[]): UserPatch {
  if (maskPaths.length === 0) {
    throw InvalidArgumentError.field(
      "update_mask",
      `must name the fields to change (any of ${updatableFields.join(", ")})`,
    );
  }
  const violations: FieldViolation[] = [];
  const patch: UserPatch = {};
  for (const path of maskPaths) {
    if (!(updatableFields as readonly string[]).includes(path)) {
      violations.push({
        field: "update_mask",
        description: `cannot update "${path}"; updatable fields are ${updatableFields.join(", ")}`,
      });
      continue;
    }
    const field = path as keyof UserFields;
    patch[field] = checkField(field, input[field], violations, "user.");
  }
  if (violations.length > 0) throw new InvalidArgumentError(violations);
  return patch;
}

export function validateUserId(id: string, field = "id"): string {
  return validateId(id, field, "a user id");
}
