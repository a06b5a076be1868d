/**
 * The client side of grpc.health.v1: what a container health check, the
 * demo and the tests use to ask a service whether it is SERVING.
 */
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "@meridian/proto/grpc/health/v1/health_pb";

export type ServingStatusName = keyof typeof ServingStatus;

/**
 * One connection to the server at `baseUrl`, reused for every check. Each
 * check resolves to the status name ("SERVING", "NOT_SERVING", ...) and
 * rejects with a ConnectError when the server does not answer in time.
 */
export function createHealthProbe(baseUrl: string, service = "") {
  const health = createClient(Health, createGrpcTransport({ baseUrl }));
  return async (timeoutMs = 2000): Promise<ServingStatusName> => {
    const { status } = await health.check({ service }, { timeoutMs });
    return ServingStatus[status] as ServingStatusName;
  };
}
