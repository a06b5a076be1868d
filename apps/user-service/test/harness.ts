import type { Client } from "@connectrpc/connect";
import { Health } from "@meridian/proto/grpc/health/v1/health_pb";
import { UserService } from "@meridian/proto/meridian/user/v1/user_pb";
import {
  type CapturedLogs,
  captureLogs,
  createTestClient,
  type Protocol,
  type TestDatabase,
} from "@meridian/testkit";
import { type RunningUserService, startUserService } from "../src/app.js";
import { loadUserServiceConfig } from "../src/config.js";

export interface ServiceUnderTest extends RunningUserService {
  logs: CapturedLogs;
  client(protocol?: Protocol): Client<typeof UserService>;
  health(): Client<typeof Health>;
}

/** Starts the real user service in-process on a free port, as main.ts would. */
export async function startForTest(
  db: TestDatabase,
  env: Record<string, string> = {},
): Promise<ServiceUnderTest> {
  const config = loadUserServiceConfig({
    PORT: "0",
    WATCH_HEARTBEAT_MS: "300",
    SHUTDOWN_GRACE_MS: "5000",
    ...db.env,
    ...env,
  });
  const logs = captureLogs();
  const service = await startUserService(config, logs.logger);
  return {
    ...service,
    logs,
    client: (protocol = "grpc") => createTestClient(UserService, service.url, protocol),
    health: () => createTestClient(Health, service.url),
  };
}

let sequence = 0;
/** An email no other test uses, so tests share one database without colliding. */
export function uniqueEmail(label = "user"): string {
  return `${label}-${process.pid}-${++sequence}-${Math.random().toString(36).slice(2, 7)}@example.com`;
}
