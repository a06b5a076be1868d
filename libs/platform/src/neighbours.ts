/**
 * How a service calls its neighbours: one long-lived gRPC transport per
 * neighbour (Connect-ES keeps one HTTP/2 connection per transport and
 * multiplexes every call on it), created once in main/app wiring and
 * injected into the code that needs it.
 *
 * Every outgoing call carries the current call's deadline (deadlines.ts) and
 * an identity:
 * - "caller": the end user's own token, forwarded, so the neighbour
 *   authorizes the real user; outside of a call, the service's identity;
 * - "service": the service's own token, for operations a neighbour allows
 *   only to services (payment Charge and Refund accept only order-service).
 */
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { currentCall } from "./call-context.js";
import { propagateDeadline } from "./deadlines.js";
import type { ServiceIdentity } from "./tokens.js";

export type CallerIdentity = "caller" | "service";

export interface NeighbourOptions {
  /** http://host:port of the neighbour. */
  baseUrl: string;
  identity: CallerIdentity;
  /** This service's own identity; required for identity "service". */
  serviceIdentity?: ServiceIdentity;
  /** Time kept back from the caller's deadline for the answer's trip home. */
  deadlineMarginMs: number;
  interceptors?: Interceptor[];
}

/**
 * Keepalive: a ping every 30 s on a connection with calls in flight tells a
 * dead peer (a crashed pod, a dropped NAT entry) from a slow one within
 * 30 + 10 s, instead of waiting for TCP to give up after minutes. A
 * connection idle for 5 minutes is closed and reopened on the next call, so
 * a neighbour that scaled or moved is picked up.
 */
export const neighbourConnection = {
  pingIntervalMs: 30_000,
  pingTimeoutMs: 10_000,
  idleConnectionTimeoutMs: 5 * 60_000,
} as const;

export function createNeighbourTransport(options: NeighbourOptions): Transport {
  return createGrpcTransport({
    baseUrl: options.baseUrl,
    ...neighbourConnection,
    interceptors: neighbourInterceptors(options),
  });
}

/**
 * The interceptors of a neighbour transport, for tests that put an
 * in-memory fake (createRouterTransport) where the network would be.
 */
export function neighbourInterceptors(options: Omit<NeighbourOptions, "baseUrl">): Interceptor[] {
  return [
    ...(options.interceptors ?? []),
    propagateDeadline(options.deadlineMarginMs),
    attachCredentials(options.identity, options.serviceIdentity),
  ];
}

/** Builds the transport to one neighbour; tests swap in fakes. */
export type ConnectNeighbour = (options: NeighbourOptions) => Transport;

/** Client interceptor: sets the authorization header as described above. */
export function attachCredentials(
  identity: CallerIdentity,
  serviceIdentity: ServiceIdentity | undefined,
): Interceptor {
  if (identity === "service" && serviceIdentity === undefined) {
    throw new Error('identity "service" needs the service\'s own identity (serviceIdentity)');
  }
  return (next) => async (req) => {
    if (req.header.has("authorization")) return next(req);
    const forwarded =
      identity === "caller" ? currentCall()?.requestHeader.get("authorization") : undefined;
    if (forwarded) {
      req.header.set("authorization", forwarded);
    } else if (serviceIdentity !== undefined) {
      req.header.set("authorization", `Bearer ${await serviceIdentity.token()}`);
    }
    return next(req);
  };
}
