/**
 * Assembles the payment service from its parts. main.ts runs it as a process;
 * tests run it in-process on a free port, exactly as it runs in production.
 */
import { fileURLToPath } from "node:url";
import {
  createAuthenticate,
  jwksPath,
  type Logger,
  type RunningService,
  ServiceRuntime,
  TokenVerifier,
} from "@meridian/platform";
import { PaymentService } from "@meridian/proto/meridian/payment/v1/payment_pb";
import type { PaymentServiceConfig } from "./config.js";
import { PrismaClient } from "./generated/prisma/client.js";
import { SimulatedProcessor } from "./processor.js";
import { PaymentRepository, paymentEventsChannel } from "./repository.js";
import { createPaymentService } from "./service.js";

const migrationsDir = fileURLToPath(new URL("../prisma/migrations", import.meta.url));

export type RunningPaymentService = RunningService;

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
  const runtime = await ServiceRuntime.open("payment-service", config, logger, migrationsDir);
  const prisma = new PrismaClient({ adapter: runtime.db.adapter });
  const payments = new PaymentRepository(prisma);
  const feed = await runtime.feed(payments.events, paymentEventsChannel);
  const processor = new SimulatedProcessor({ slowMs: config.PROCESSOR_SLOW_MS });
  return runtime.serve({
    services: [PaymentService],
    routes: (router) =>
      router.service(PaymentService, createPaymentService({ payments, feed, processor })),
    authenticate: createAuthenticate({ verifier }),
    beforeDatabaseCloses: () => prisma.$disconnect(),
  });
}
