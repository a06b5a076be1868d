import type { Client } from "@connectrpc/connect";
import { generateSigningJwk } from "@meridian/platform";
import { OrderService } from "@meridian/proto/meridian/order/v1/order_pb";
import {
  type CapturedLogs,
  captureLogs,
  createTestClient,
  type Protocol,
  startTestIssuer,
  type TestDatabase,
  type TestIssuer,
} from "@meridian/testkit";
import { type RunningOrderService, startOrderService } from "../src/app.js";
import { loadOrderServiceConfig } from "../src/config.js";
import { connectToFakes, FakePayments, FakeUsers } from "./fakes.js";

export interface ServiceUnderTest extends RunningOrderService {
  logs: CapturedLogs;
  users: FakeUsers;
  payments: FakePayments;
  /** Signs user tokens that order-service trusts, as user-service would. */
  issuer: TestIssuer;
  /** A client authenticated with `token` (none when null). */
  client(token: string | null, protocol?: Protocol): Client<typeof OrderService>;
  /** A new customer that user-service knows, with a token. */
  customer(): Promise<{ id: string; token: string; client: Client<typeof OrderService> }>;
  adminToken(): Promise<string>;
}

/** Starts the real order service in-process on a free port, its neighbours faked in memory. */
export async function startForTest(
  db: TestDatabase,
  env: Record<string, string> = {},
): Promise<ServiceUnderTest> {
  const issuer = await startTestIssuer("user-service");
  const users = new FakeUsers();
  const payments = new FakePayments();
  const config = loadOrderServiceConfig({
    PORT: "0",
    AUTH_SIGNING_KEY: JSON.stringify(await generateSigningJwk()),
    WATCH_HEARTBEAT_MS: "300",
    SHUTDOWN_GRACE_MS: "3000",
    USER_SERVICE_URL: issuer.url,
    ...db.env,
    ...env,
  });
  const logs = captureLogs();
  const service = await startOrderService(config, logs.logger, connectToFakes(users, payments));
  const client = (token: string | null, protocol: Protocol = "grpc") =>
    createTestClient(OrderService, service.url, protocol, token ?? undefined);
  return {
    ...service,
    async stop() {
      await service.stop();
      await issuer.close();
    },
    logs,
    users,
    payments,
    issuer,
    client,
    async customer() {
      const id = crypto.randomUUID();
      users.existing.add(id);
      const token = await issuer.userToken(id, ["customer"]);
      return { id, token, client: client(token) };
    },
    adminToken: () => issuer.userToken(crypto.randomUUID(), ["admin"]),
  };
}
