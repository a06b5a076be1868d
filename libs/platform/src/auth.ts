/**
 * Authentication and authorization for every Meridian server.
 *
 * Authentication happens once per call in the request gate (Connect-ES 2.2's
 * `requestGate`), which runs after the headers arrive and before the request
 * body is read: a call without a valid bearer token is refused without
 * reading, decompressing or parsing its messages. The verified principal goes
 * into the call's context values for handlers to read with `principalOf`.
 *
 * Authorization is per operation and lives next to the rule it protects, in
 * the handlers, through the small helpers below: "self or admin", "admin
 * only", "these services or an admin".
 */
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { PermissionDeniedError, UnauthenticatedError } from "./errors.js";
import type { Principal, TokenVerifier } from "./tokens.js";

export const principalKey = createContextKey<Principal | undefined>(undefined, {
  description: "the authenticated caller",
});

export interface Authenticator {
  verifier: TokenVerifier;
  /**
   * Procedures anyone may call, as "package.Service/Method" (sign-up,
   * sign-in). Health is always public.
   */
  publicProcedures?: readonly string[];
}

/** Verifies the call's bearer token; throws UnauthenticatedError. Public procedures pass untouched. */
export function createAuthenticate({
  verifier,
  publicProcedures = [],
}: Authenticator): (context: HandlerContext) => void | Promise<void> {
  const open = new Set(publicProcedures);
  return (context) => {
    if (context.service.typeName === "grpc.health.v1.Health") return;
    if (open.has(`${context.service.typeName}/${context.method.name}`)) return;
    const token = bearerToken(context.requestHeader.get("authorization"));
    const principal = verifier.verify(token);
    if (principal instanceof Promise) {
      return principal.then((p) => {
        context.values.set(principalKey, p);
      });
    }
    context.values.set(principalKey, principal);
  };
}

function bearerToken(header: string | null): string {
  if (header === null || header === "") {
    throw new UnauthenticatedError(
      'this call needs an access token: send "authorization: Bearer <token>" (get one from UserService/Authenticate)',
    );
  }
  const match = /^Bearer +([^\s]+)$/i.exec(header);
  if (match === null) {
    throw new UnauthenticatedError('the authorization header must be "Bearer <token>"');
  }
  return match[1] as string;
}

/** The caller; handlers of authenticated procedures always have one. */
export function principalOf(context: HandlerContext): Principal {
  const principal = context.values.get(principalKey);
  if (principal === undefined) throw new UnauthenticatedError("this call needs an access token");
  return principal;
}

export function isAdmin(principal: Principal): boolean {
  return principal.kind === "user" && principal.roles.includes("admin");
}

/** The caller is the user `userId` or an admin; `what` says what was refused, for the message. */
export function requireSelfOrAdmin(
  context: HandlerContext,
  userId: string,
  what: string,
): Principal {
  const principal = principalOf(context);
  if (isAdmin(principal)) return principal;
  if (principal.kind === "user" && principal.userId === userId) return principal;
  throw new PermissionDeniedError(`${describe(principal)} may not ${what}`);
}

export function requireAdmin(context: HandlerContext, what: string): Principal {
  const principal = principalOf(context);
  if (isAdmin(principal)) return principal;
  throw new PermissionDeniedError(`${describe(principal)} may not ${what}; only an admin may`);
}

/** Service-to-service operations: only the named services (or an admin) may call them. */
export function requireServiceOrAdmin(
  context: HandlerContext,
  services: readonly string[],
  what: string,
): Principal {
  const principal = principalOf(context);
  if (isAdmin(principal)) return principal;
  if (principal.kind === "service" && services.includes(principal.service)) return principal;
  throw new PermissionDeniedError(
    `${describe(principal)} may not ${what}; only ${services.join(", ")} or an admin may`,
  );
}

/**
 * The user whose data a customer may see: their own. Admins, and the
 * services named in `readers`, may name anyone (or no one: everything);
 * customers who name someone else are refused.
 */
export function scopeToCaller(
  context: HandlerContext,
  requestedUserId: string,
  what: string,
  readers: readonly string[] = [],
): string {
  const principal = principalOf(context);
  if (isAdmin(principal)) return requestedUserId;
  if (principal.kind === "service" && readers.includes(principal.service)) return requestedUserId;
  if (principal.kind === "user") {
    if (requestedUserId === "" || requestedUserId === principal.userId) return principal.userId;
  }
  throw new PermissionDeniedError(
    `${describe(principal)} may not ${what}${requestedUserId ? ` of user ${requestedUserId}` : " of every user"}`,
  );
}

function describe(principal: Principal): string {
  return principal.kind === "user" ? `user ${principal.userId}` : `service ${principal.service}`;
}
