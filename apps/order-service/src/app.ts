/**
 * Assembles the order service from its parts. main.ts runs it as a process;
 * tests run it in-process on a free port, exactly as it runs in production.
 * Each neighbour gets one long-lived gRPC transport, built by `connect`;
 * unit tests pass in-memory fakes (createRouterTransport) instead.
 */
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import {
  type ConnectNeighbour,
  createAuthenticate,
  createNeighbourTransport,
  jwksPath,
  type Logger,
  type RunningService,
  resolveSigningKey,
  ServiceIdentity,
  ServiceRuntime,
  TokenSigner,
  TokenVerifier,
} from "@meridian/platform";
import { OrderService } from "@meridian/proto/meridian/order/v1/order_pb";
import { PaymentService } from "@meridian/proto/meridian/payment/v1/payment_pb";
import { UserService } from "@meridian/proto/meridian/user/v1/user_pb";
import type { OrderServiceConfig } from "./config.js";
import { PrismaClient } from "./generated/prisma/client.js";
import { OrderWorkflow } from "./orders.js";
import { OrderRepository, orderEventsChannel } from "./repository.js";
import { createOrderService } from "./service.js";

const migrationsDir = fileURLToPath(new URL("../prisma/migrations", import.meta.url));

/** The name order-service signs its own identity tokens with; payment-service trusts it. */
export const orderServiceIdentity = "order-service";

export type RunningOrderService = RunningService;

export async function startOrderService(
  config: OrderServiceConfig,
  logger: Logger,
  connect: ConnectNeighbour = createNeighbourTransport,
): Promise<RunningOrderService> {
  const signingKey = await resolveSigningKey(config, logger);
  const identity = new ServiceIdentity(new TokenSigner(orderServiceIdentity, signingKey));
  const verifier = new TokenVerifier({
    issuers: [
      {
        issuer: "user-service",
        keys: new URL(jwksPath, config.USER_SERVICE_URL),
        issuesUserTokens: true,
      },
    ],
  });
  const transports = {
    // Forwards the end user's token: user-service authorizes the real user.
    users: connect({
      baseUrl: config.USER_SERVICE_URL,
      identity: "caller",
      serviceIdentity: identity,
      deadlineMarginMs: config.DEADLINE_MARGIN_MS,
    }),
    // Charges and refunds are order-service's to make, as itself.
    payments: connect({
      baseUrl: config.PAYMENT_SERVICE_URL,
      identity: "service",
      serviceIdentity: identity,
      deadlineMarginMs: config.DEADLINE_MARGIN_MS,
    }),
  };

  const runtime = await ServiceRuntime.open("order-service", config, logger, migrationsDir);
  const prisma = new PrismaClient({ adapter: runtime.db.adapter });
  const orders = new OrderRepository(prisma);
  const workflow = new OrderWorkflow({
    orders,
    users: createClient(UserService, transports.users),
    payments: createClient(PaymentService, transports.payments),
    logger,
  });
  const feed = await runtime.feed(orders.events, orderEventsChannel);
  return runtime.serve({
    services: [OrderService],
    routes: (router) =>
      router.service(OrderService, createOrderService({ orders, workflow, feed })),
    authenticate: createAuthenticate({ verifier }),
    publishedKeys: [signingKey],
    beforeDatabaseCloses: () => prisma.$disconnect(),
  });
}
