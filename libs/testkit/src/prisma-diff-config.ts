/**
 * The Prisma CLI configuration for one command only, run by migrations.ts:
 * `prisma migrate diff --from-migrations … --to-schema-datamodel …`, with
 * DATABASE_URL naming a throwaway PostgreSQL database that migrations.ts
 * created and will drop. Prisma runs the migrations in it and compares the
 * result with schema.prisma.
 *
 * Prisma 6.19's offline (JavaScript) schema engine cannot do that through a
 * plain @prisma/adapter-pg (prisma/orm#27403); this file works around it:
 * - It refuses --shadow-database-url when an adapter is configured, and the
 *   adapter's own shadow database is created but never used (its pool's
 *   connectionString overrides the database name), so the migrations run in
 *   DATABASE_URL itself. Here that is the throwaway database, on purpose:
 *   it is both the database and the shadow database.
 * - Reading the catalog back fails on columns of type `name` ("Column type
 *   'name' could not be deserialized"): they are passed on as text.
 * - Reading CHECK constraints (pg_constraint.contype, of the one-byte type
 *   "char") fails the same way, and as text the engine crashes: it wants a
 *   Character column. payment-service has CHECK constraints.
 */
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { defineConfig } from "prisma/config";

const url = process.env.DATABASE_URL ?? "";
if (!/^postgres(ql)?:\/\//.test(url)) {
  throw new Error(
    "prisma-diff-config.ts needs DATABASE_URL to name a throwaway PostgreSQL database",
  );
}

const nameType = 19;
const charType = 18;
const textType = 25;
/** ColumnTypeEnum.Character of @prisma/driver-adapter-utils. */
const characterColumn = 6;

/** Which columns were "char", by result: queryRaw passes pg's rows array through. */
const charColumns = new WeakMap<unknown[], number[]>();

function catalogReadingPool(): pg.Pool {
  // allowExitOnIdle: the CLI waits for its event loop to empty, which idle
  // pooled connections would otherwise delay by 10 s.
  const pool = new pg.Pool({ connectionString: url, allowExitOnIdle: true });
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<pg.QueryResult>;
  pool.query = (async (...args: unknown[]) => {
    const result = await query(...args);
    // A script of several statements (a migration) answers with one result each.
    if (Array.isArray(result)) return result;
    const chars: number[] = [];
    result.fields.forEach((field, column) => {
      if (field.dataTypeID === charType) chars.push(column);
      if (field.dataTypeID === nameType || field.dataTypeID === charType) {
        field.dataTypeID = textType;
      }
    });
    if (chars.length > 0) charColumns.set(result.rows, chars);
    return result;
  }) as typeof pool.query;
  return pool;
}

async function connect() {
  const adapter = await new PrismaPg(catalogReadingPool(), { disposeExternalPool: true }).connect();
  const queryRaw = adapter.queryRaw.bind(adapter);
  adapter.queryRaw = async (query) => {
    const result = await queryRaw(query);
    for (const column of charColumns.get(result.rows) ?? []) {
      result.columnTypes[column] = characterColumn;
    }
    return result;
  };
  return adapter;
}

export default defineConfig({
  engine: "js",
  experimental: { adapter: true },
  async adapter() {
    return {
      provider: "postgres",
      adapterName: "@prisma/adapter-pg",
      connect,
      connectToShadowDb: connect,
    };
  },
});
