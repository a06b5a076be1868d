/**
 * Assembles the user service from its parts. main.ts runs it as a process;
 * tests run it in-process on a free port, exactly as it runs in production.
 */
import { fileURLToPath } from "node:url";
import { EventFeed, type Logger, openDatabase, startServer } from "@meridian/platform";
import { UserService } from "@meridian/proto/meridian/user/v1/user_pb";
import type { UserServiceConfig } from "./config.js";
import { PrismaClient } from "./generated/prisma/client.js";
import { UserRepository, userEventsChannel } from "./repository.js";
import { createUserService } from "./service.js";

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
    routes: (router) => router.service(UserService, createUserService({ users, feed })),
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
