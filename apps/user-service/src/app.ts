/**
 * Assembles the user service from its parts. main.ts runs it as a process;
 * tests run it in-process on a free port, exactly as it runs in production.
 */
import { fileURLToPath } from "node:url";
import {
  ConfigError,
  createAuthenticate,
  InvalidArgumentError,
  type Logger,
  type RunningService,
  resolveSigningKey,
  ServiceRuntime,
  TokenSigner,
  TokenVerifier,
} from "@meridian/platform";
import { UserService } from "@meridian/proto/meridian/user/v1/user_pb";
import type { UserServiceConfig } from "./config.js";
import { type UserFields, validateNewAccount } from "./domain.js";
import { PrismaClient } from "./generated/prisma/client.js";
import { hashPassword } from "./passwords.js";
import { UserRepository, userEventsChannel } from "./repository.js";
import { createUserService, publicProcedures } from "./service.js";

/** The issuer name in the tokens user-service signs; other services trust it for users. */
export const userTokenIssuer = "user-service";

const migrationsDir = fileURLToPath(new URL("../prisma/migrations", import.meta.url));

export type RunningUserService = RunningService;

export async function startUserService(
  config: UserServiceConfig,
  logger: Logger,
): Promise<RunningUserService> {
  const signingKey = await resolveSigningKey(config, logger);
  const signer = new TokenSigner(userTokenIssuer, signingKey);
  // user-service verifies its own tokens with the key at hand, no JWKS fetch.
  const verifier = new TokenVerifier({
    issuers: [{ issuer: userTokenIssuer, keys: [signingKey], issuesUserTokens: true }],
  });
  const runtime = await ServiceRuntime.open("user-service", config, logger, migrationsDir);
  const prisma = new PrismaClient({ adapter: runtime.db.adapter });
  const users = new UserRepository(prisma);
  await bootstrapAdmin(config, users, logger);
  const feed = await runtime.feed(users.events, userEventsChannel);
  const accessTokenTtlSeconds = config.ACCESS_TOKEN_TTL_SECONDS;
  return runtime.serve({
    services: [UserService],
    routes: (router) =>
      router.service(
        UserService,
        createUserService({ users, feed, signer, accessTokenTtlSeconds }),
      ),
    authenticate: createAuthenticate({ verifier, publicProcedures }),
    publishedKeys: [signingKey],
    beforeDatabaseCloses: () => prisma.$disconnect(),
  });
}

async function bootstrapAdmin(config: UserServiceConfig, users: UserRepository, logger: Logger) {
  const email = config.BOOTSTRAP_ADMIN_EMAIL;
  const password = config.BOOTSTRAP_ADMIN_PASSWORD;
  if (email === undefined || password === undefined) return;
  let fields: UserFields;
  try {
    ({ fields } = validateNewAccount(
      { email, name: "Administrator", department: "", password },
      { passwordRequired: true },
    ));
  } catch (error) {
    if (!(error instanceof InvalidArgumentError)) throw error;
    throw new ConfigError([`BOOTSTRAP_ADMIN_EMAIL/BOOTSTRAP_ADMIN_PASSWORD: ${error.message}`]);
  }
  const admin = await users.ensureAdmin(fields, await hashPassword(password));
  logger.info({ userId: admin.id, email: admin.email }, "bootstrap admin ready");
}
