/**
 * Domain errors, and their one mapping to gRPC status codes.
 *
 * Domain and repository code throws these (never ConnectError), so that the
 * rules of a service read in its own terms. The call interceptor maps them
 * with `toConnectError`, attaching the standard google.rpc error details that
 * every gRPC client knows how to decode.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  BadRequest_FieldViolationSchema,
  BadRequestSchema,
  PreconditionFailure_ViolationSchema,
  PreconditionFailureSchema,
  ResourceInfoSchema,
} from "@meridian/proto/google/rpc/error_details_pb";
import { isDatabaseUnavailable } from "./database-errors.js";

export interface FieldViolation {
  /** Path of the field in the request, e.g. "user.email" or "items[2].quantity". */
  field: string;
  description: string;
}

export abstract class DomainError extends Error {}

/** The request is malformed, whatever the state of the system: INVALID_ARGUMENT. */
export class InvalidArgumentError extends DomainError {
  override name = "InvalidArgumentError";
  constructor(readonly violations: readonly FieldViolation[]) {
    super(violations.map((v) => `${v.field}: ${v.description}`).join("; "));
  }

  static field(field: string, description: string): InvalidArgumentError {
    return new InvalidArgumentError([{ field, description }]);
  }
}

/** NOT_FOUND. */
export class NotFoundError extends DomainError {
  override name = "NotFoundError";
  constructor(
    readonly resourceType: string,
    readonly resourceName: string,
  ) {
    super(`${resourceType} "${resourceName}" not found`);
  }
}

/** ALREADY_EXISTS: the resource the caller tried to create is there already. */
export class AlreadyExistsError extends DomainError {
  override name = "AlreadyExistsError";
  constructor(
    readonly resourceType: string,
    readonly resourceName: string,
    message: string,
  ) {
    super(message);
  }
}

/** FAILED_PRECONDITION: the system is not in the state the operation needs. */
export class FailedPreconditionError extends DomainError {
  override name = "FailedPreconditionError";
  constructor(
    readonly type: string,
    readonly subject: string,
    message: string,
  ) {
    super(message);
  }
}

/** UNAUTHENTICATED: no valid credentials came with the call. */
export class UnauthenticatedError extends DomainError {
  override name = "UnauthenticatedError";
}

/** PERMISSION_DENIED: the caller is known but may not do this. */
export class PermissionDeniedError extends DomainError {
  override name = "PermissionDeniedError";
}

/**
 * Codes that say a call ended without an answer: time ran out, it was
 * cancelled, or the other side was unreachable. Whatever the call was
 * doing may or may not have happened; a retry (idempotent) finds out.
 */
export const callEndedCodes: ReadonlySet<Code> = new Set([
  Code.DeadlineExceeded,
  Code.Canceled,
  Code.Unavailable,
]);

/**
 * The error a caller sees. ConnectErrors pass through; domain errors get
 * their code and details; a database outage is UNAVAILABLE, which clients
 * may retry; anything else is a bug, so the caller gets a bare INTERNAL.
 * Outages and bugs both go to `onInternal` (the logger) with the real error.
 */
export function toConnectError(error: unknown, onInternal: (error: unknown) => void): ConnectError {
  if (error instanceof ConnectError) {
    if (!error.isWireError) return error;
    // A neighbour's call that ended without an answer means the same to our
    // own caller. Any other neighbour error is ours to handle; if a handler
    // lets it escape, it is a bug here, so the caller sees INTERNAL and not
    // the neighbour's message and details.
    if (callEndedCodes.has(error.code)) return new ConnectError(error.rawMessage, error.code);
    onInternal(error);
    return new ConnectError("internal error", Code.Internal);
  }
  if (error instanceof UnauthenticatedError) {
    return new ConnectError(error.message, Code.Unauthenticated);
  }
  if (error instanceof PermissionDeniedError) {
    return new ConnectError(error.message, Code.PermissionDenied);
  }
  if (error instanceof InvalidArgumentError) {
    const fieldViolations = error.violations.map((v) => create(BadRequest_FieldViolationSchema, v));
    return new ConnectError(error.message, Code.InvalidArgument, undefined, [
      { desc: BadRequestSchema, value: { fieldViolations } },
    ]);
  }
  if (error instanceof NotFoundError || error instanceof AlreadyExistsError) {
    const code = error instanceof NotFoundError ? Code.NotFound : Code.AlreadyExists;
    return new ConnectError(error.message, code, undefined, [
      {
        desc: ResourceInfoSchema,
        value: { resourceType: error.resourceType, resourceName: error.resourceName },
      },
    ]);
  }
  if (error instanceof FailedPreconditionError) {
    const violation = create(PreconditionFailure_ViolationSchema, {
      type: error.type,
      subject: error.subject,
      description: error.message,
    });
    return new ConnectError(error.message, Code.FailedPrecondition, undefined, [
      { desc: PreconditionFailureSchema, value: { violations: [violation] } },
    ]);
  }
  onInternal(error);
  if (isDatabaseUnavailable(error)) {
    return new ConnectError("the database is unavailable; retry later", Code.Unavailable);
  }
  return new ConnectError("internal error", Code.Internal);
}
