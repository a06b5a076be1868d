/**
 * What every service's app.ts does the same way: open its database (and
 * migrate it), start watch feeds over its outboxes, serve on its port with
 * the platform's deadlines and auth, and stop in the right order. A service
 * keeps only what is its own: its Prisma client, repositories, handlers and
 * who it trusts.
 */
import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { type Database, openDatabase } from "./database.js";
import {
  EventFeed,
  type EventSource,
  type EventFeed as Feed,
  type FeedEvent,
} from "./event-feed.js";
import type { Logger } from "./logger.js";
import { startServer } from "./server.js";
import type { serviceConfig } from "./service-config.js";
import type { SigningKey } from "./tokens.js";

type ServiceConfig = {
  readonly [K in keyof ReturnType<typeof serviceConfig>]: ReturnType<
    ReturnType<typeof serviceConfig>[K]
  >;
};

export interface RunningService {
  /** http://host:port */
  readonly url: string;
  readonly port: number;
  /** Graceful shutdown: stop accepting, end watch streams, finish calls, close the database. */
  stop(): Promise<void>;
}

export interface ServeOptions {
  services: readonly DescService[];
  routes: (router: ConnectRouter) => void;
  authenticate?: (context: HandlerContext) => void | Promise<void>;
  publishedKeys?: readonly SigningKey[];
  /** Runs after the server has closed and before the database does (e.g. prisma.$disconnect). */
  beforeDatabaseCloses?: () => Promise<void>;
}

export class ServiceRuntime {
  private readonly draining = new AbortController();

  private constructor(
    readonly name: string,
    readonly config: ServiceConfig,
    readonly logger: Logger,
    readonly db: Database,
  ) {}

  /** Opens (and migrates) the service's database: PGlite, or PostgreSQL with DATABASE_URL. */
  static async open(
    name: string,
    config: ServiceConfig,
    logger: Logger,
    migrationsDir: string,
  ): Promise<ServiceRuntime> {
    const db = await openDatabase({
      url: config.DATABASE_URL,
      dataDir: config.DATA_DIR,
      migrationsDir,
      poolSize: config.DATABASE_POOL_SIZE,
      logger,
    });
    return new ServiceRuntime(name, config, logger, db);
  }

  /** A watch feed over an outbox, woken by its NOTIFY channel, ended when the service drains. */
  feed<E extends FeedEvent>(source: EventSource<E>, channel: string): Promise<Feed<E>> {
    return EventFeed.start({
      source,
      wakeups: (onWake) => this.db.listen(channel, onWake),
      draining: this.draining.signal,
      heartbeatMs: this.config.WATCH_HEARTBEAT_MS,
      logger: this.logger,
    });
  }

  async serve(options: ServeOptions): Promise<RunningService> {
    const { config, db } = this;
    const server = await startServer({
      name: this.name,
      host: config.HOST,
      port: config.PORT,
      logger: this.logger,
      services: options.services,
      routes: options.routes,
      authenticate: options.authenticate,
      publishedKeys: options.publishedKeys,
      deadlines: { defaultMs: config.DEFAULT_DEADLINE_MS, maxMs: config.MAX_DEADLINE_MS },
      readiness: () => db.ping(),
      draining: this.draining.signal,
      readMaxBytes: config.READ_MAX_BYTES,
      shutdownGraceMs: config.SHUTDOWN_GRACE_MS,
      serverPath: config.SERVER_PATH,
    });
    let stopped: Promise<void> | undefined;
    return {
      url: server.url,
      port: server.port,
      stop: () => {
        stopped ??= (async () => {
          this.draining.abort();
          await server.closed;
          await options.beforeDatabaseCloses?.();
          await db.close();
        })();
        return stopped;
      },
    };
  }
}
