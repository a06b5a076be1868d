/**
 * Keeping a service's prisma/migrations/ (what every database runs) in step
 * with its prisma/schema.prisma (what its code is generated from): the
 * machinery behind `npm run migration:new` and `npm run migration:check`
 * (tools/migrations.ts) and each service's test/migrations.test.ts.
 *
 * Prisma computes the SQL (`prisma migrate diff --from-migrations`) by running
 * the migrations in a database and comparing the result with schema.prisma.
 * That database is a throwaway one on a PostgreSQL server, created here and
 * always dropped; prisma-diff-config.ts says why Prisma cannot make its own.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";

export interface MigrationOptions {
  /** Any database on a PostgreSQL server where this user may create databases. */
  postgresUrl: string;
}

/** The PostgreSQL server did not let us in, so nothing could be compared. */
export class PostgresUnreachableError extends Error {
  override name = "PostgresUnreachableError";
}

/**
 * The SQL that would take a database migrated with `appDir`'s prisma/migrations
 * to what its prisma/schema.prisma describes: "" when they agree.
 */
export async function pendingMigrationSql(
  appDir: string,
  { postgresUrl }: MigrationOptions,
): Promise<string> {
  return withThrowawayDatabase(postgresUrl, (databaseUrl) => migrateDiff(appDir, databaseUrl));
}

export interface CreatedMigration {
  /** prisma/migrations/<UTC yyyyMMddHHmmss>_<name>/migration.sql, absolute. */
  file: string;
  sql: string;
}

/**
 * Writes the migration that brings prisma/migrations up to prisma/schema.prisma,
 * named `<UTC timestamp>_<name>` so that it runs after every existing one.
 */
export async function createMigration(
  appDir: string,
  name: string,
  { postgresUrl, now = new Date() }: MigrationOptions & { now?: Date },
): Promise<CreatedMigration> {
  if (!/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/.test(name)) {
    throw new Error(
      `a migration name is lowercase snake_case saying what changes, like add_order_note; got "${name}"`,
    );
  }
  const migrationsDir = path.join(appDir, "prisma", "migrations");
  const timestamp = now.toISOString().replace(/\D/g, "").slice(0, 14);
  // Services apply migrations in name order: a new one must sort last.
  const latest = (await readdir(migrationsDir, { withFileTypes: true }))
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
    .at(-1);
  if (latest !== undefined && timestamp <= latest.slice(0, 14)) {
    throw new Error(
      `a migration stamped ${timestamp} would not run after the latest one, ${latest}; ` +
        "check the clock, or wait a second",
    );
  }
  const sql = await pendingMigrationSql(appDir, { postgresUrl });
  if (sql === "") {
    throw new Error(
      "schema.prisma and the migrations already agree: there is nothing to migrate " +
        "(edit prisma/schema.prisma first)",
    );
  }
  const file = path.join(migrationsDir, `${timestamp}_${name}`, "migration.sql");
  await mkdir(path.dirname(file));
  await writeFile(file, `${sql}\n`);
  return { file, sql };
}

async function withThrowawayDatabase<T>(
  postgresUrl: string,
  use: (databaseUrl: string) => Promise<T>,
): Promise<T> {
  const database = `meridian_shadow_${randomBytes(6).toString("hex")}`;
  await onServer(postgresUrl, `CREATE DATABASE ${database}`);
  try {
    const databaseUrl = new URL(postgresUrl);
    databaseUrl.pathname = `/${database}`;
    return await use(databaseUrl.toString());
  } finally {
    // FORCE: a Prisma process that died may still hold a connection.
    await onServer(postgresUrl, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  }
}

async function onServer(postgresUrl: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresUrl, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (error) {
    const { host } = new URL(postgresUrl);
    throw new PostgresUnreachableError(
      `cannot connect to PostgreSQL at ${host}: ${(error as Error).message || String(error)}`,
      { cause: error },
    );
  }
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/** `prisma migrate diff` from the migrations to the schema: the SQL, "" when none. */
async function migrateDiff(appDir: string, databaseUrl: string): Promise<string> {
  // The CLI's own entry point, run with this Node.js: no shell, no npx lookup.
  const prismaCli = createRequire(import.meta.url).resolve("prisma/build/index.js");
  // The sibling file, whether this runs from src/ (.ts) or dist/ (.js).
  const diffConfig = fileURLToPath(
    new URL(`prisma-diff-config${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url),
  );
  const args = [
    ...["migrate", "diff", "--config", diffConfig, "--script", "--exit-code"],
    ...["--from-migrations", path.join("prisma", "migrations")],
    ...["--to-schema-datamodel", path.join("prisma", "schema.prisma")],
  ];
  const child = spawn(process.execPath, [prismaCli, ...args], {
    cwd: appDir,
    // CHECKPOINT_DISABLE: no update check over a network this machine may not have.
    env: { ...process.env, DATABASE_URL: databaseUrl, CHECKPOINT_DISABLE: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => {
    stdout += chunk;
  });
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
  // --exit-code: 0 when there is no difference, 2 when there is one.
  if (code === 0) return "";
  if (code === 2) return stdout.trim();
  throw new Error(
    `prisma migrate diff failed in ${appDir} (exit ${code}):\n${stderr.trim() || stdout.trim()}`,
  );
}
