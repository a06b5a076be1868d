/**
 * Assembles the payment service from its parts. main.ts runs it as a process;
 * tests run it in-process on a free port, exactly as it runs in production.
 */
import { fileURLToPath } from "node:url";
import {
  createAuthenticate,
  EventFeed,
  jwksPath,
  type Logger,
  openDatabase,
  startServer,
  TokenVerifier,
} from "@meridian/platform";
import { PaymentService } from "@meridian/proto/meridian/payment/v1/payment_pb";
import type { PaymentServiceConfig } from "./config.js";
import { PrismaClient } from "./generated/prisma/client.js";
import { SimulatedProcessor } from "./processor.js";
import { PaymentRepository, paymentEventsChannel } from "./repository.js";
import { createPaymentService } from "./service.js";

const migrationsDir = fileURLToPath(new URL("../prisma/migrations", import.meta.url));

export interface RunningPaymentService {
  /** http://host:port */
  readonly url: string;
  readonly port: number;
  /** Graceful shutdown: stop accepting, end watch streams, finish calls, close the database. */
  stop(): Promise<void>;
}

export async function startPaymentService(
  config: PaymentServiceConfig,
  logger: Logger,
): Promise<RunningPaymentService> {
  // Payment signs nothing: it only verifies user tokens (people) and
  // order-service's own tokens, with the keys those services publish.
  const verifier = new TokenVerifier({
    issuers: [
      {
        issuer: "user-service",
        keys: new URL(jwksPath, config.USER_SERVICE_URL),
        issuesUserTokens: true,
      },
      {
        issuer: "order-service",
        keys: new URL(jwksPath, config.ORDER_SERVICE_URL),
        issuesUserTokens: false,
      },
    ],
  });
  const db = await openDatabase({
    url: config.DATABASE_URL,
    dataDir: config.DATA_DIR,
    migrationsDir,
    poolSize: config.DATABASE_POOL_SIZE,
    logger,
  });
  const prisma = new PrismaClient({ adapter: db.adapter });
  const payments = new PaymentRepository(prisma);
  const draining = new AbortController();
  const feed = await EventFeed.start({
    source: payments,
    wakeups: (onWake) => db.listen(paymentEventsChannel, onWake),
    draining: draining.signal,
    heartbeatMs: config.WATCH_HEARTBEAT_MS,
    logger,
  });
  const processor = new SimulatedProcessor({ slowMs: config.PROCESSOR_SLOW_MS });
  const server = await startServer({
    name: "payment-service",
    host: config.HOST,
    port: config.PORT,
    logger,
    services: [PaymentService],
    routes: (router) =>
      router.service(PaymentService, createPaymentService({ payments, feed, processor })),
    authenticate: createAuthenticate({ verifier }),
    deadlines: { defaultMs: config.DEFAULT_DEADLINE_MS, maxMs: config.MAX_DEADLINE_MS },
    readiness: () => db.ping(),
    draining: draining.signal,
    readMaxBytes: config.READ_MAX_BYTES,
    shutdownGraceMs: config.SHUTDOWN_GRACE_MS,
  });

  let stopped: Promise<void> | undefined;
  return {
    url: server.url,
    port: server.port,
    stop() {
      stopped ??= (async () => {
        draining.abort();
        await server.closed;
        await prisma.$disconnect();
        await db.close();
      })();
      return stopped;
    },
  };
}
