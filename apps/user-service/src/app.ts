/**
 * Assembles the user service from its parts. main.ts runs it as a process;
 * tests run it in-process on a free port, exactly as it runs in production.
 */
import { fileURLToPath } from "node:url";
import {
  ConfigError,
  createAuthenticate,
  EventFeed,
  InvalidArgumentError,
  type Logger,
  openDatabase,
  resolveSigningKey,
  startServer,
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

export interface RunningUserService {
  /** http://host:port */
  readonly url: string;
  readonly port: number;
  /** Graceful shutdown: stop accepting, end watch streams, finish calls, close the database. */
  stop(): Promise<void>;
}

export async function startUserService(
  config: UserServiceConfig,
  logger: Logger,
): Promise<RunningUserService> {
  const db = await openDatabase({
    url: config.DATABASE_URL,
    dataDir: config.DATA_DIR,
    migrationsDir,
    poolSize: config.DATABASE_POOL_SIZE,
    logger,
  });
  const prisma = new PrismaClient({ adapter: db.adapter });
  const users = new UserRepository(prisma);
  await bootstrapAdmin(config, users, logger);
  const signingKey = await resolveSigningKey(config, logger);
  const signer = new TokenSigner(userTokenIssuer, signingKey);
  const verifier = new TokenVerifier({
    issuers: [{ issuer: userTokenIssuer, keys: [signingKey], issuesUserTokens: true }],
  });
  const draining = new AbortController();
  const feed = await EventFeed.start({
    source: users,
    wakeups: (onWake) => db.listen(userEventsChannel, onWake),
    draining: draining.signal,
    heartbeatMs: config.WATCH_HEARTBEAT_MS,
    logger,
  });
  const server = await startServer({
    name: "user-service",
    host: config.HOST,
    port: config.PORT,
    logger,
    services: [UserService],
    routes: (router) =>
      router.service(
        UserService,
        createUserService({
          users,
          feed,
          signer,
          accessTokenTtlSeconds: config.ACCESS_TOKEN_TTL_SECONDS,
        }),
      ),
    authenticate: createAuthenticate({ verifier, publicProcedures }),
    publishedKeys: [signingKey],
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
