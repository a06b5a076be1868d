/**
 * Real clients for tests: the gRPC protocol over HTTP/2 (how Meridian's
 * services call each other) and the Connect protocol with JSON over
 * HTTP/1.1 (how curl and browsers call them).
 */
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";

export type Protocol = "grpc" | "connect-json";
export const protocols: readonly Protocol[] = ["grpc", "connect-json"];

export function createTestTransport(baseUrl: string, protocol: Protocol): Transport {
  return protocol === "grpc"
    ? createGrpcTransport({ baseUrl })
    : createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false });
}

export function createTestClient<S extends DescService>(
  service: S,
  baseUrl: string,
  protocol: Protocol = "grpc",
): Client<S> {
  return createClient(service, createTestTransport(baseUrl, protocol));
}
