/**
 * Real clients for tests: the gRPC protocol over HTTP/2 (how Meridian's
 * services call each other) and the Connect protocol with JSON over
 * HTTP/1.1 (how curl and browsers call them).
 */
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";

export type Protocol = "grpc" | "connect-json";
export const protocols: readonly Protocol[] = ["grpc", "connect-json"];

/** Sends "authorization: Bearer <token>" on every call that does not set its own. */
export function bearer(token: string): Interceptor {
  return (next) => (req) => {
    if (!req.header.has("authorization")) req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

export function createTestTransport(
  baseUrl: string,
  protocol: Protocol,
  token?: string,
): Transport {
  const interceptors = token === undefined ? [] : [bearer(token)];
  return protocol === "grpc"
    ? createGrpcTransport({ baseUrl, interceptors })
    : createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false, interceptors });
}

/** A client of `service` at `baseUrl`; with `token`, every call is authenticated with it. */
export function createTestClient<S extends DescService>(
  service: S,
  baseUrl: string,
  protocol: Protocol = "grpc",
  token?: string,
): Client<S> {
  return createClient(service, createTestTransport(baseUrl, protocol, token));
}
