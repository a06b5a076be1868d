import type { Client } from "@connectrpc/connect";
import { generateSigningJwk, importSigningKey, type Role, TokenSigner } from "@meridian/platform";
import { Health } from "@meridian/proto/grpc/health/v1/health_pb";
import { UserService } from "@meridian/proto/meridian/user/v1/user_pb";
import {
  type CapturedLogs,
  captureLogs,
  createTestClient,
  type Protocol,
  type TestDatabase,
} from "@meridian/testkit";
import { type RunningUserService, startUserService, userTokenIssuer } from "../src/app.js";
import { loadUserServiceConfig } from "../src/config.js";

export interface ServiceUnderTest extends RunningUserService {
  logs: CapturedLogs;
  /** A client; by default authenticated as an admin, `token: null` sends no token. */
  client(protocol?: Protocol, token?: string | null): Client<typeof UserService>;
  health(): Client<typeof Health>;
  /** A token signed with the service's own key, as Authenticate would issue it. */
  token(userId: string, roles?: readonly Role[], ttlSeconds?: number): Promise<string>;
}

/** Every user the tests create signs in with this. */
export const testPassword = "correct horse battery staple";
export const adminUserId = "00000000-0000-4000-8000-00000000ad00";

/** Starts the real user service in-process on a free port, as main.ts would. */
export async function startForTest(
  db: TestDatabase,
  env: Record<string, string> = {},
): Promise<ServiceUnderTest> {
  const signingJwk = await generateSigningJwk();
  const signer = new TokenSigner(
    userTokenIssuer,
    await importSigningKey(JSON.stringify(signingJwk)),
  );
  const token = async (userId: string, roles: readonly Role[] = ["customer"], ttlSeconds = 600) =>
    (await signer.sign({ subject: userId, roles, ttlSeconds })).token;
  const adminToken = await token(adminUserId, ["admin"]);
  const config = loadUserServiceConfig({
    PORT: "0",
    AUTH_SIGNING_KEY: JSON.stringify(signingJwk),
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
    client: (protocol = "grpc", as: string | null = adminToken) =>
      createTestClient(UserService, service.url, protocol, as ?? undefined),
    health: () => createTestClient(Health, service.url),
    token,
  };
}

let sequence = 0;
/** An email no other test uses, so tests share one database without colliding. */
export function uniqueEmail(label = "user"): string {
  return `${label}-${process.pid}-${++sequence}-${Math.random().toString(36).slice(2, 7)}@example.com`;
}
