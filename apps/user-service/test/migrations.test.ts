/**
 * Every database runs prisma/migrations; the code is generated from
 * prisma/schema.prisma. This fails when the two disagree, typically because
 * schema.prisma was edited without `npm run migration:new -- user-service <name>`.
 */
import { fileURLToPath } from "node:url";
import { pendingMigrationSql, testDatabaseKinds, testPostgresUrl } from "@meridian/testkit";
import { describe, expect, it } from "vitest";

const appDir = fileURLToPath(new URL("..", import.meta.url));
// Prisma computes the difference on PostgreSQL (required in CI).
const hasPostgres = (await testDatabaseKinds()).some((kind) => kind.name === "postgres");

describe.runIf(hasPostgres)("prisma/migrations", () => {
  it("build exactly the database that prisma/schema.prisma describes", async () => {
    const missing = await pendingMigrationSql(appDir, { postgresUrl: testPostgresUrl });
    expect(missing, "npm run migration:new -- user-service <name> writes this migration").toBe("");
  });
});
