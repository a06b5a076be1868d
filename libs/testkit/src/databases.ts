/**
 * The databases a test suite runs against: embedded PGlite always, and the
 * real PostgreSQL when one is reachable (CI always has one; there it is
 * required, so a broken PostgreSQL fails the build instead of skipping).
 * Each suite gets a fresh, uniquely named database that is dropped after.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Database, openDatabase } from "@meridian/platform";
import pg from "pg";
import { captureLogs } from "./logs.js";

export interface TestDatabase {
  readonly name: "pglite" | "postgres";
  /** Environment for the service under test: DATABASE_URL or DATA_DIR. */
  readonly env: Record<string, string>;
  /** Drops the database (or deletes the data directory). */
  drop(): Promise<void>;
}

export interface TestDatabaseKind {
  readonly name: "pglite" | "postgres";
  create(): Promise<TestDatabase>;
}

/** Where the test PostgreSQL lives; override with TEST_POSTGRES_URL. */
export const testPostgresUrl =
  process.env.TEST_POSTGRES_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({
    connectionString: testPostgresUrl,
    connectionTimeoutMillis: 2000,
  });
  try {
    await client.connect();
    await client.query("SELECT 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

const pglite: TestDatabaseKind = {
  name: "pglite",
  async create() {
    const dataDir = await mkdtemp(path.join(tmpdir(), "meridian-test-"));
    return {
      name: "pglite",
      env: { DATA_DIR: dataDir },
      drop: () => rm(dataDir, { recursive: true, force: true }),
    };
  },
};

const postgres: TestDatabaseKind = {
  name: "postgres",
  async create() {
    const database = `meridian_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
    const admin = new pg.Client({ connectionString: testPostgresUrl });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${database}`);
    } finally {
      await admin.end();
    }
    const url = new URL(testPostgresUrl);
    url.pathname = `/${database}`;
    return {
      name: "postgres",
      env: { DATABASE_URL: url.toString() },
      async drop() {
        const client = new pg.Client({ connectionString: testPostgresUrl });
        await client.connect();
        try {
          await client.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
        } finally {
          await client.end();
        }
      },
    };
  },
};

/** PGlite, plus PostgreSQL when reachable; in CI a missing PostgreSQL is an error. */
export async function testDatabaseKinds(): Promise<TestDatabaseKind[]> {
  if (await postgresReachable()) return [pglite, postgres];
  if (process.env.CI) {
    throw new Error(
      `CI must test on PostgreSQL, but ${testPostgresUrl} is not reachable (set TEST_POSTGRES_URL)`,
    );
  }
  console.warn(`PostgreSQL at ${testPostgresUrl} is not reachable: testing on PGlite only`);
  return [pglite];
}

export interface OpenTestDatabase {
  /** Opened as a service opens its own: migrated, with a Prisma driver adapter. */
  readonly database: Database;
  /** Closes the database and drops it. */
  close(): Promise<void>;
}

/** A fresh database of `kind`, migrated and opened with openDatabase: for a repository's tests on real SQL. */
export async function openTestDatabase(
  kind: TestDatabaseKind,
  migrationsDir: string,
): Promise<OpenTestDatabase> {
  const created = await kind.create();
  try {
    const database = await openDatabase({
      url: created.env.DATABASE_URL,
      dataDir: created.env.DATA_DIR ?? "",
      migrationsDir,
      logger: captureLogs().logger,
    });
    return {
      database,
      async close() {
        await database.close();
        await created.drop();
      },
    };
  } catch (error) {
    await created.drop();
    throw error;
  }
}

/**
 * A writer that changes an existing row and then writes its outbox event
 * takes the row first and the outbox lock second. This starts such a
 * transaction and stops it between the two (resolving once the row is
 * held), so a test can send a concurrent write into that window and check
 * it cannot deadlock; `release` lets it take the lock and commit.
 */
export async function rowHeldBeforeOutboxLock<Tx extends OutboxLockTaker>(
  transaction: (body: (tx: Tx) => Promise<void>) => Promise<unknown>,
  holdRow: (tx: Tx) => Promise<unknown>,
  channel: string,
): Promise<{ release(): Promise<void> }> {
  let held: () => void = () => {};
  const rowHeld = new Promise<void>((resolve) => {
    held = resolve;
  });
  let goOn: () => void = () => {};
  const released = new Promise<void>((resolve) => {
    goOn = resolve;
  });
  const done = transaction(async (tx) => {
    await holdRow(tx);
    held();
    await released;
    await tx.$executeRawUnsafe("SELECT pg_advisory_xact_lock(hashtext($1))", channel);
  });
  await Promise.race([rowHeld, done]);
  return {
    async release() {
      goOn();
      await done;
    },
  };
}

interface OutboxLockTaker {
  $executeRawUnsafe(query: string, ...values: unknown[]): PromiseLike<number>;
}
