/**
 * Migrations that keep up with schema.prisma:
 *
 *   npm run migration:new -- <service> <name>   after editing apps/<service>/prisma/schema.prisma,
 *                                               writes the migration that gets a database there
 *   npm run migration:check [-- <service>...]   fails, showing the SQL, when a service's
 *                                               migrations do not produce its schema.prisma
 *
 * Both run the migrations in a throwaway database on the PostgreSQL server at
 * MIGRATION_POSTGRES_URL (see libs/testkit/src/migrations.ts for how).
 */
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createMigration, PostgresUnreachableError, pendingMigrationSql } from "@meridian/testkit";

const root = fileURLToPath(new URL("..", import.meta.url));
const postgresUrl =
  process.env.MIGRATION_POSTGRES_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

/** Every app with a Prisma schema. */
const services = readdirSync(path.join(root, "apps")).filter((app) =>
  existsSync(path.join(root, "apps", app, "prisma", "schema.prisma")),
);

const usage = `usage:
  npm run migration:new -- <service> <name>    e.g. npm run migration:new -- order-service add_order_note
  npm run migration:check [-- <service>...]
services: ${services.join(", ")}`;

class UsageError extends Error {}

function appDir(service: string): string {
  if (!services.includes(service)) throw new UsageError(`no service "${service}"`);
  return path.join(root, "apps", service);
}

async function newMigration(service: string, name: string): Promise<void> {
  const { file, sql } = await createMigration(appDir(service), name, { postgresUrl });
  process.stdout.write(
    `${sql}\n\nwrote ${path.relative(root, file)}\n` +
      "Review it: Prisma writes only what schema.prisma describes (no data backfills, no CHECK\n" +
      "constraints), and say why in a comment. Then:\n" +
      `  npx nx run ${service}:prisma-generate   (serve, test and build also do this)\n` +
      `  npx nx test ${service}\n`,
  );
}

async function check(selected: string[]): Promise<boolean> {
  const dirs = selected.map(appDir);
  // In parallel: each is mostly a Prisma process waiting on PostgreSQL.
  const pending = await Promise.all(dirs.map((dir) => pendingMigrationSql(dir, { postgresUrl })));
  selected.forEach((service, i) => {
    if (pending[i] === "") {
      process.stdout.write(`${service}: the migrations produce schema.prisma\n`);
    } else {
      console.error(
        `${service}: schema.prisma differs from what the migrations produce; they lack:\n\n` +
          `${pending[i]}\n\n` +
          `Write the migration: npm run migration:new -- ${service} <what_changed>\n`,
      );
    }
  });
  return pending.every((sql) => sql === "");
}

async function main([command, ...args]: string[]): Promise<number> {
  if (command === "new" && args.length === 2) {
    const [service = "", name = ""] = args;
    await newMigration(service, name);
    return 0;
  }
  if (command === "check") return (await check(args.length > 0 ? args : services)) ? 0 : 1;
  throw new UsageError("");
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      console.error(`${error.message ? `${error.message}\n` : ""}${usage}`);
    } else if (error instanceof PostgresUnreachableError) {
      console.error(
        `${error.message}\n` +
          "Migrations are computed in a throwaway database on a PostgreSQL server. Point\n" +
          "MIGRATION_POSTGRES_URL at any one where you may create databases, or start one:\n" +
          "  docker compose up -d postgres\n" +
          "  export MIGRATION_POSTGRES_URL=postgresql://postgres:meridian-postgres@127.0.0.1:55432/postgres",
      );
    } else {
      console.error((error as Error).message ?? error);
    }
    process.exitCode = 1;
  },
);
