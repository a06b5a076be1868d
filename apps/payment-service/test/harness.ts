import { randomUUID } from "node:crypto";
import type { Client } from "@connectrpc/connect";
import type { Role } from "@meridian/platform";
import { Health } from "@meridian/proto/grpc/health/v1/health_pb";
import { PaymentService } from "@meridian/proto/meridian/payment/v1/payment_pb";
import {
  type CapturedLogs,
  captureLogs,
  createTestClient,
  type Protocol,
  startTestIssuer,
  type TestDatabase,
  type TestIssuer,
} from "@meridian/testkit";
import { type RunningPaymentService, startPaymentService } from "../src/app.js";
import { loadPaymentServiceConfig } from "../src/config.js";

/** How long tok_slow takes in tests: long enough to time out under, short enough to wait for. */
export const testSlowMs = 1000;

export interface ServiceUnderTest extends RunningPaymentService {
  logs: CapturedLogs;
  /** Stand-ins for the services whose tokens payment trusts. */
  users: TestIssuer;
  orders: TestIssuer;
  /** A client calling as order-service (the usual caller), or with `token`; null sends none. */
  client(protocol?: Protocol, token?: string | null): Client<typeof PaymentService>;
  /** A client calling as the user `userId`, a customer unless `roles` says otherwise. */
  asUser(
    userId: string,
    roles?: readonly Role[],
    protocol?: Protocol,
  ): Promise<Client<typeof PaymentService>>;
  health(): Client<typeof Health>;
}

/**
 * Starts the real payment service in-process on a free port, as main.ts
 * would, trusting two test issuers in place of user-service and order-service.
 */
export async function startForTest(
  db: TestDatabase,
  env: Record<string, string> = {},
): Promise<ServiceUnderTest> {
  const users = await startTestIssuer("user-service");
  const orders = await startTestIssuer("order-service");
  const orderToken = await orders.serviceToken();
  const config = loadPaymentServiceConfig({
    PORT: "0",
    WATCH_HEARTBEAT_MS: "300",
    SHUTDOWN_GRACE_MS: "5000",
    PROCESSOR_SLOW_MS: String(testSlowMs),
    USER_SERVICE_URL: users.url,
    ORDER_SERVICE_URL: orders.url,
    ...db.env,
    ...env,
  });
  const logs = captureLogs();
  const service = await startPaymentService(config, logs.logger);
  return {
    ...service,
    logs,
    users,
    orders,
    client: (protocol = "grpc", token: string | null = orderToken) =>
      createTestClient(PaymentService, service.url, protocol, token ?? undefined),
    async asUser(userId, roles = ["customer"], protocol = "grpc") {
      return createTestClient(
        PaymentService,
        service.url,
        protocol,
        await users.userToken(userId, roles),
      );
    },
    health: () => createTestClient(Health, service.url),
    async stop() {
      await service.stop();
      await Promise.all([users.close(), orders.close()]);
    },
  };
}

export interface ChargeInit {
  orderId: string;
  userId: string;
  amount?: { currencyCode: string; minorUnits: bigint };
  paymentToken: string;
  idempotencyKey: string;
}

/** A charge no other test has made: fresh ids and key, a token that succeeds. */
export function newCharge(overrides: Partial<ChargeInit> = {}): ChargeInit {
  return {
    orderId: randomUUID(),
    userId: randomUUID(),
    amount: { currencyCode: "EUR", minorUnits: 1999n },
    paymentToken: "tok_visa",
    idempotencyKey: `charge-${randomUUID()}`,
    ...overrides,
  };
}
