/**
 * Configures the Prisma CLI (generate, migrate diff/deploy/status) to work
 * offline: the JavaScript engine plus a driver adapter, never a downloaded
 * native engine. DATABASE_URL picks the database the CLI talks to: a
 * postgresql:// URL, or else the embedded PGlite data directory.
 * (The service itself applies migrations at start-up; see libs/platform database.ts.)
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { defineConfig } from "prisma/config";

// The CLI falls back to downloading engines when DATABASE_URL is unset.
process.env.DATABASE_URL ??= "file:.data/user-service";
const url = process.env.DATABASE_URL;

export default defineConfig({
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
