/**
 * A service's own database: embedded PGlite by default, PostgreSQL when a
 * postgresql:// URL is configured. Both run the same migrations and the same
 * Prisma client through a driver adapter, so nothing above this file knows
 * which one it is talking to.
 *
 * Migrations are the folders Prisma writes (prisma/migrations/<name>/
 * migration.sql). They are applied at start-up, in name order, each in its
 * own transaction, and recorded in Prisma's own `_prisma_migrations` table
 * with Prisma's checksum, so `prisma migrate status` and `migrate deploy`
 * agree with what the service did. Doing it in-process keeps start-up fast
 * and needs no CLI (and no engine download) in a production image.
 */
import { createHash, randomUUID } from "node:crypto";
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { PGlite } from "@electric-sql/pglite";
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaPGlite } from "pglite-prisma-adapter";
import type { Logger } from "./logger.js";

export interface DatabaseOptions {
  /** A postgresql:// URL; unset means PGlite in `dataDir`. */
  url: string | undefined;
  /** Where PGlite keeps its files; created when missing. */
  dataDir: string;
  /** The app's prisma/migrations folder. */
  migrationsDir: string;
  logger: Logger;
  /** Connections in the PostgreSQL pool. */
  poolSize?: number;
}

export interface Database {
  readonly kind: "pglite" | "postgres";
  /** Pass to the app's generated PrismaClient: `new PrismaClient({ adapter })`. */
  readonly adapter: PrismaPg | PrismaPGlite;
  /** Calls `onNotify` for each NOTIFY on `channel`, from any process sharing the database. */
  listen(channel: string, onNotify: () => void): Promise<() => Promise<void>>;
  /** Rejects unless the database answers a query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** What `writeToOutbox` needs of a Prisma interactive transaction. */
export interface OutboxTransaction {
  $executeRawUnsafe(query: string, ...values: unknown[]): PromiseLike<number>;
}

/**
 * Writes a watch-feed event inside the caller's transaction. The lock, taken
 * before the event's cursor is drawn and held until the transaction ends,
 * makes concurrent writers commit their events in cursor order (see
 * event-feed.ts). The NOTIFY is queued in the same statement: PostgreSQL
 * delivers it to listeners only when the transaction commits, after the
 * event is visible, and drops it if the transaction rolls back.
 *
 * Two statements, not three: the lock is held from the first until COMMIT,
 * and every writer of the outbox waits for it, so each round trip saved
 * inside it is saved for every writer.
 */
export async function writeToOutbox<T>(
  tx: OutboxTransaction,
  channel: string,
  insertEvent: () => PromiseLike<T>,
): Promise<T> {
  await tx.$executeRawUnsafe(
    "SELECT pg_advisory_xact_lock(hashtext($1)), pg_notify($1, '')",
    channel,
  );
  return insertEvent();
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const migrations = readMigrations(options.migrationsDir);
  return options.url
    ? openPostgres(options.url, migrations, options)
    : openPGlite(options.dataDir, migrations, options.logger);
}

interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

function readMigrations(dir: string): Migration[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(path.join(dir, name, "migration.sql"), "utf8");
      return { name, sql, checksum: createHash("sha256").update(sql).digest("hex") };
    });
}

/** Prisma's own bookkeeping table, exactly as `prisma migrate` creates it. */
const migrationsTable = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

/** The few calls migrating needs, which PGlite and a pg client both offer. */
interface SqlSession {
  exec(sql: string): Promise<unknown>;
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
}

async function migrate(session: SqlSession, migrations: Migration[], logger: Logger) {
  await session.exec(migrationsTable);
  const { rows } = await session.query(
    `SELECT migration_name, checksum FROM "_prisma_migrations"
     WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
  );
  const applied = new Map(
    (rows as { migration_name: string; checksum: string }[]).map((r) => [
      r.migration_name,
      r.checksum,
    ]),
  );
  for (const migration of migrations) {
    const checksum = applied.get(migration.name);
    if (checksum !== undefined) {
      if (checksum !== migration.checksum) {
        logger.warn(
          { migration: migration.name },
          "migration was edited after it was applied; leaving the database as it is",
        );
      }
      continue;
    }
    const started = performance.now();
    await session.exec("BEGIN");
    try {
      await session.exec(migration.sql);
      await session.query(
        `INSERT INTO "_prisma_migrations"
           (id, checksum, finished_at, migration_name, started_at, applied_steps_count)
         VALUES ($1, $2, now(), $3, now(), 1)`,
        [randomUUID(), migration.checksum, migration.name],
      );
      await session.exec("COMMIT");
    } catch (error) {
      await session.exec("ROLLBACK");
      throw new Error(`migration ${migration.name} failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
    logger.info(
      { migration: migration.name, ms: Math.round(performance.now() - started) },
      "applied migration",
    );
  }
}

async function openPGlite(dataDir: string, migrations: Migration[], logger: Logger) {
  mkdirSync(dataDir, { recursive: true });
  const unlock = lockDataDir(dataDir);
  const db = await PGlite.create(dataDir).catch((error: unknown) => {
    unlock();
    throw error;
  });
  try {
    await migrate(db, migrations, logger);
  } catch (error) {
    await db.close();
    unlock();
    throw error;
  }
  logger.info({ dataDir }, "database: embedded PGlite");
  return {
    kind: "pglite",
    adapter: new PrismaPGlite(db),
    listen: (channel, onNotify) => db.listen(channel, () => onNotify()),
    async ping() {
      await db.query("SELECT 1");
    },
    async close() {
      await db.close();
      unlock();
    },
  } satisfies Database;
}

/**
 * PGlite takes no lock of its own: two processes (or two instances in one
 * process) can open one data directory, and writes are then silently lost.
 * So the first opener claims the directory with a lock file naming its pid;
 * a second one fails with a message that says who holds it. A lock left by a
 * process that no longer exists is taken over.
 */
function lockDataDir(dataDir: string): () => void {
  const lockFile = path.join(dataDir, "meridian.lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockFile, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(lockFile, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const holder = Number(readFileSync(lockFile, "utf8").trim());
      if (Number.isInteger(holder) && holder > 0 && processExists(holder)) {
        throw new Error(
          `the embedded database in ${dataDir} is in use by process ${holder}` +
            (holder === process.pid ? " (this process)" : "") +
            "; stop it, or give this service another DATA_DIR",
        );
      }
      rmSync(lockFile, { force: true });
    }
  }
  throw new Error(`could not lock the embedded database in ${dataDir}`);
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function openPostgres(
  url: string,
  migrations: Migration[],
  { logger, poolSize = 10 }: DatabaseOptions,
): Promise<Database> {
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  // An idle pooled connection dropped by the server must not crash the process.
  pool.on("error", (error) => logger.warn({ err: error }, "idle database connection failed"));
  const client = await pool.connect();
  try {
    // Replicas starting together take turns; the second finds nothing to do.
    await client.query("SELECT pg_advisory_lock(hashtext('meridian_migrations'))");
    await migrate(
      { exec: (sql) => client.query(sql), query: (sql, params) => client.query(sql, params) },
      migrations,
      logger,
    );
  } catch (error) {
    client.release(true);
    await pool.end();
    throw error;
  }
  await client.query("SELECT pg_advisory_unlock(hashtext('meridian_migrations'))");
  client.release();
  logger.info({ host: new URL(url).host }, "database: PostgreSQL");

  const listeners = new Set<{ close(): Promise<void> }>();
  return {
    kind: "postgres",
    adapter: new PrismaPg(pool),
    async listen(channel, onNotify) {
      const listener = await listenWithReconnect(url, channel, onNotify, logger);
      listeners.add(listener);
      return async () => {
        listeners.delete(listener);
        await listener.close();
      };
    },
    async ping() {
      await pool.query("SELECT 1");
    },
    async close() {
      await Promise.all([...listeners].map((l) => l.close()));
      await pool.end();
    },
  };
}

/**
 * A dedicated connection that LISTENs on `channel`, reconnecting with backoff
 * when it drops. After every (re)connect it calls `onNotify` once, because
 * notifications sent while it was down are lost and the reader must catch up.
 */
async function listenWithReconnect(
  url: string,
  channel: string,
  onNotify: () => void,
  logger: Logger,
): Promise<{ close(): Promise<void> }> {
  let closed = false;
  let client: pg.Client | undefined;
  const connect = async () => {
    const next = new pg.Client({ connectionString: url });
    next.on("notification", (message) => {
      if (message.channel === channel) onNotify();
    });
    next.on("error", (error) => {
      logger.warn({ err: error, channel }, "LISTEN connection failed; reconnecting");
      void next.end().catch(() => {});
      if (!closed) void reconnect();
    });
    await next.connect();
    await next.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    client = next;
    onNotify();
  };
  const reconnect = async () => {
    for (let delay = 100; !closed; delay = Math.min(delay * 2, 5000)) {
      await sleep(delay);
      try {
        await connect();
        return;
      } catch (error) {
        logger.warn({ err: error, channel, retryInMs: delay }, "LISTEN reconnect failed");
      }
    }
  };
  await connect();
  return {
    async close() {
      closed = true;
      await client?.end().catch(() => {});
    },
  };
}
