import { Code, ConnectError } from "@connectrpc/connect";
import {
  BadRequestSchema,
  PreconditionFailureSchema,
  ResourceInfoSchema,
} from "@meridian/proto/google/rpc/error_details_pb";
import { describe, expect, it } from "vitest";
import {
  AlreadyExistsError,
  DomainError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  toConnectError,
} from "../src/errors.js";

/** An onInternal callback that records what it was given. */
function recorder() {
  const seen: unknown[] = [];
  return { seen, onInternal: (error: unknown) => void seen.push(error) };
}

describe("toConnectError", () => {
  it("maps InvalidArgumentError to INVALID_ARGUMENT with a BadRequest listing every field", () => {
    const { seen, onInternal } = recorder();
    const error = toConnectError(
      new InvalidArgumentError([
        { field: "user.email", description: "must be an email address" },
        { field: "items[2].quantity", description: "must be positive" },
      ]),
      onInternal,
    );
    expect(error).toBeInstanceOf(ConnectError);
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe(
      "user.email: must be an email address; items[2].quantity: must be positive",
    );
    const [badRequest, ...more] = error.findDetails(BadRequestSchema);
    expect(more).toEqual([]);
    expect(
      badRequest?.fieldViolations.map(({ field, description }) => ({ field, description })),
    ).toEqual([
      { field: "user.email", description: "must be an email address" },
      { field: "items[2].quantity", description: "must be positive" },
    ]);
    expect(error.findDetails(ResourceInfoSchema)).toEqual([]);
    expect(seen).toEqual([]);
  });

  it("maps InvalidArgumentError.field to a single field violation", () => {
    const error = toConnectError(InvalidArgumentError.field("page_size", "too big"), () => {});
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe("page_size: too big");
    const details = error.findDetails(BadRequestSchema);
    expect(details).toHaveLength(1);
    expect(details[0]?.fieldViolations).toHaveLength(1);
    expect(details[0]?.fieldViolations[0]).toMatchObject({
      field: "page_size",
      description: "too big",
    });
  });

  it("maps NotFoundError to NOT_FOUND with ResourceInfo", () => {
    const { seen, onInternal } = recorder();
    const error = toConnectError(
      new NotFoundError("meridian.user.v1.User", "users/42"),
      onInternal,
    );
    expect(error.code).toBe(Code.NotFound);
    expect(error.rawMessage).toBe('meridian.user.v1.User "users/42" not found');
    const details = error.findDetails(ResourceInfoSchema);
    expect(details).toHaveLength(1);
    expect(details[0]).toMatchObject({
      resourceType: "meridian.user.v1.User",
      resourceName: "users/42",
    });
    expect(error.findDetails(BadRequestSchema)).toEqual([]);
    expect(seen).toEqual([]);
  });

  it("maps AlreadyExistsError to ALREADY_EXISTS with ResourceInfo", () => {
    const { seen, onInternal } = recorder();
    const error = toConnectError(
      new AlreadyExistsError("meridian.user.v1.User", "a@example.com", "email is taken"),
      onInternal,
    );
    expect(error.code).toBe(Code.AlreadyExists);
    expect(error.rawMessage).toBe("email is taken");
    const details = error.findDetails(ResourceInfoSchema);
    expect(details).toHaveLength(1);
    expect(details[0]).toMatchObject({
      resourceType: "meridian.user.v1.User",
      resourceName: "a@example.com",
    });
    expect(seen).toEqual([]);
  });

  it("maps FailedPreconditionError to FAILED_PRECONDITION with a PreconditionFailure", () => {
    const { seen, onInternal } = recorder();
    const error = toConnectError(
      new FailedPreconditionError("STATE", "orders/7", "order is already shipped"),
      onInternal,
    );
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toBe("order is already shipped");
    const details = error.findDetails(PreconditionFailureSchema);
    expect(details).toHaveLength(1);
    expect(details[0]?.violations).toHaveLength(1);
    expect(details[0]?.violations[0]).toMatchObject({
      type: "STATE",
      subject: "orders/7",
      description: "order is already shipped",
    });
    expect(seen).toEqual([]);
  });

  it("passes an existing ConnectError through unchanged", () => {
    const { seen, onInternal } = recorder();
    const original = new ConnectError("slow down", Code.ResourceExhausted, { "retry-after": "3" });
    const error = toConnectError(original, onInternal);
    expect(error).toBe(original);
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.rawMessage).toBe("slow down");
    expect(error.metadata.get("retry-after")).toBe("3");
    expect(seen).toEqual([]);
  });

  it("hides any other Error behind a bare INTERNAL and hands the original to onInternal", () => {
    const { seen, onInternal } = recorder();
    const secret = "password=hunter2 at postgresql://admin:hunter2@10.0.0.5/prod";
    const original = new Error(secret);
    expect(original.stack).toContain("hunter2");

    const error = toConnectError(original, onInternal);
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toBe("internal error");
    expect(error.message).toBe("[internal] internal error");
    expect(error.cause).toBeUndefined();
    expect(error.details).toEqual([]);
    expect([...error.metadata.keys()]).toEqual([]);
    expect(String(error.stack)).not.toContain("hunter2");
    expect(JSON.stringify(error)).not.toContain("hunter2");
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBe(original);
  });

  it("treats an unmapped DomainError subclass and non-Error values as internal", () => {
    class QuotaError extends DomainError {}
    for (const thrown of [new QuotaError("quota of tenant acme exceeded"), "boom", undefined]) {
      const { seen, onInternal } = recorder();
      const error = toConnectError(thrown, onInternal);
      expect(error.code).toBe(Code.Internal);
      expect(error.rawMessage).toBe("internal error");
      expect(seen).toEqual([thrown]);
    }
  });
});

describe("domain errors", () => {
  it("carry their fields and readable names", () => {
    const invalid = InvalidArgumentError.field("name", "must not be empty");
    expect(invalid).toBeInstanceOf(DomainError);
    expect(invalid.name).toBe("InvalidArgumentError");
    expect(invalid.violations).toEqual([{ field: "name", description: "must not be empty" }]);
    expect(invalid.message).toBe("name: must not be empty");

    const notFound = new NotFoundError("User", "u1");
    expect(notFound.name).toBe("NotFoundError");
    expect(notFound.message).toBe('User "u1" not found');

    expect(new AlreadyExistsError("User", "u1", "taken").name).toBe("AlreadyExistsError");
    expect(new FailedPreconditionError("T", "s", "m").name).toBe("FailedPreconditionError");
  });
});
