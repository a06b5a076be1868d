/**
 * grpc.health.v1.Health, as Kubernetes, compose and grpc-health-probe expect.
 *
 * A service is SERVING only while its readiness probe (for Meridian services:
 * "the database answers") passes and it is not shutting down. Check runs the
 * probe on demand; Watch re-runs it every `watchIntervalMs` and sends a
 * message only when the status changes.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  type Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "@meridian/proto/grpc/health/v1/health_pb";
import type { Logger } from "./logger.js";

export interface HealthOptions {
  /** The services this server hosts; "" (the whole server) is always known. */
  services: readonly DescService[];
  /** Resolves when the server can do its work; rejects (or hangs) when it cannot. */
  readiness: () => Promise<void>;
  /** Aborted when the server starts shutting down. */
  draining: AbortSignal;
  logger: Logger;
  probeTimeoutMs?: number;
  watchIntervalMs?: number;
}

export function createHealthService(options: HealthOptions): ServiceImpl<typeof Health> {
  const { readiness, draining, logger, probeTimeoutMs = 2000, watchIntervalMs = 5000 } = options;
  const known = new Set(["", ...options.services.map((s) => s.typeName)]);
  let lastReady: boolean | undefined;

  async function probe(): Promise<ServingStatus> {
    if (draining.aborted) return ServingStatus.NOT_SERVING;
    let ready: boolean;
    try {
      await Promise.race([
        readiness(),
        sleep(probeTimeoutMs, undefined, { ref: false }).then(() => {
          throw new Error(`readiness probe took longer than ${probeTimeoutMs} ms`);
        }),
      ]);
      ready = true;
    } catch (error) {
      ready = false;
      if (lastReady !== false) logger.warn({ err: error }, "not ready");
    }
    if (ready && lastReady === false) logger.info("ready again");
    lastReady = ready;
    return ready ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
  }

  return {
    async check({ service }) {
      if (!known.has(service)) {
        throw new ConnectError(`unknown service "${service}"`, Code.NotFound);
      }
      return { status: await probe() };
    },

    async *watch({ service }, context) {
      if (!known.has(service)) {
        // The protocol asks Watch to report, not fail, for unknown services.
        yield { status: ServingStatus.SERVICE_UNKNOWN };
        return;
      }
      const stop = AbortSignal.any([context.signal, draining]);
      let last: ServingStatus | undefined;
      for (;;) {
        const status = await probe();
        if (status !== last) yield { status };
        last = status;
        if (stop.aborted) return;
        await sleep(watchIntervalMs, undefined, { signal: stop }).catch(() => {});
      }
    },
  };
}
