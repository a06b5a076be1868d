/**
 * The Prisma CLI configuration every service shares (each app's
 * prisma.config.ts is one call to this): the JavaScript engine plus a driver
 * adapter, never a downloaded native engine. `prisma generate` and
 * `prisma migrate diff` are what Meridian uses the CLI for. DATABASE_URL
 * picks the database the CLI talks to: a postgresql:// URL, or else the
 * service's embedded PGlite data directory. Services apply migrations
 * themselves at start-up (see libs/platform/src/database.ts), because
 * `migrate deploy` on Prisma 6.19 hangs on PGlite and fails through the pg
 * adapter (prisma/orm#27403).
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { defineConfig } from "prisma/config";

export function servicePrismaConfig(service: string) {
  // The CLI falls back to downloading engines when DATABASE_URL is unset.
  process.env.DATABASE_URL ??= `file:.data/${service}`;
  const url = process.env.DATABASE_URL;

  return defineConfig({
    engine: "js",
    schema: path.join("prisma", "schema.prisma"),
    migrations: { path: path.join("prisma", "migrations") },
    experimental: { adapter: true },
    async adapter() {
      if (/^postgres(ql)?:\/\//.test(url)) {
        const { PrismaPg } = await import("@prisma/adapter-pg");
        return new PrismaPg({ connectionString: url });
      }
      const dataDir = url.replace(/^file:/, "");
      mkdirSync(dataDir, { recursive: true });
      // The schema engine takes a session advisory lock that single-connection PGlite cannot give.
      process.env.PRISMA_SCHEMA_DISABLE_ADVISORY_LOCK ??= "1";
      const { PGlite } = await import("@electric-sql/pglite");
      const { PrismaPGlite } = await import("pglite-prisma-adapter");
      return new PrismaPGlite(new PGlite(dataDir));
    },
  });
}
