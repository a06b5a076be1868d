/**
 * What `npm run migration:new` and `migration:check` rest on, on a small
 * service-like prisma/ directory of its own: a schema, and an init migration
 * with a hand-added CHECK constraint (as payment-service's has), which Prisma
 * does not model and must leave alone.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  createMigration,
  pendingMigrationSql,
  testDatabaseKinds,
  testPostgresUrl,
} from "../src/index.js";

// engineType "client", as in every service: else the Prisma CLI wants to download an engine.
const schema = `generator client {
  provider   = "prisma-client"
  output     = "generated"
  engineType = "client"
}

datasource db {
  provider = "postgresql"
  url      = "postgresql://unused@localhost/unused"
}

model Review {
  id    String @id @db.Uuid
  stars Int

  @@map("reviews")
}
`;

const initMigration = `CREATE TABLE "reviews" (
    "id" UUID NOT NULL,
    "stars" INTEGER NOT NULL,

    CONSTRAINT "reviews_pkey" PRIMARY KEY ("id")
);

-- Added by hand; Prisma does not model CHECK constraints.
ALTER TABLE "reviews" ADD CONSTRAINT "reviews_stars_check" CHECK ("stars" BETWEEN 1 AND 5);
`;

const options = { postgresUrl: testPostgresUrl };
const hasPostgres = (await testDatabaseKinds()).some((kind) => kind.name === "postgres");

let appDir: string;
const migrationsDir = () => path.join(appDir, "prisma", "migrations");
const editSchema = (newSchema: string) =>
  writeFile(path.join(appDir, "prisma", "schema.prisma"), newSchema);

beforeEach(async () => {
  appDir = await mkdtemp(path.join(tmpdir(), "meridian-migrations-"));
  await mkdir(path.join(migrationsDir(), "20260101000000_init"), { recursive: true });
  await editSchema(schema);
  await writeFile(
    path.join(migrationsDir(), "20260101000000_init", "migration.sql"),
    initMigration,
  );
  await writeFile(path.join(migrationsDir(), "migration_lock.toml"), 'provider = "postgresql"\n');
});
afterEach(() => rm(appDir, { recursive: true, force: true }));

describe.runIf(hasPostgres)("migrations against schema.prisma", () => {
  it("finds nothing missing when the migrations produce the schema, CHECK constraint and all", async () => {
    expect(await pendingMigrationSql(appDir, options)).toBe("");
  });

  it("writes the migration for a new field, to run last, after which they agree", async () => {
    await editSchema(
      schema.replace("  stars Int\n", '  stars Int\n  comment String @default("")\n'),
    );
    expect(await pendingMigrationSql(appDir, options)).toMatch(/ALTER TABLE "reviews" ADD COLUMN/);

    const now = new Date("2030-01-02T03:04:05.678Z");
    const { file, sql } = await createMigration(appDir, "add_review_comment", { ...options, now });

    expect(file).toBe(
      path.join(migrationsDir(), "20300102030405_add_review_comment", "migration.sql"),
    );
    expect(await readFile(file, "utf8")).toBe(`${sql}\n`);
    expect(sql).toMatch(/ALTER TABLE "reviews" ADD COLUMN\s+"comment" TEXT NOT NULL DEFAULT ''/);
    expect(sql, "the hand-added CHECK constraint stays").not.toMatch(/CONSTRAINT/);
    expect(await pendingMigrationSql(appDir, options)).toBe("");
  });

  it("refuses, and writes nothing, when there is nothing to migrate", async () => {
    await expect(createMigration(appDir, "nothing", options)).rejects.toThrow(
      "schema.prisma and the migrations already agree",
    );
    expect(await readdir(migrationsDir())).toEqual(["20260101000000_init", "migration_lock.toml"]);
  });
});

describe("migration names", () => {
  it("must be lowercase snake_case", async () => {
    for (const name of ["AddComment", "add-comment", "add comment", "_add", "add__comment", ""]) {
      await expect(createMigration(appDir, name, options)).rejects.toThrow("snake_case");
    }
  });

  it("must sort after every existing migration, which a slow clock would break", async () => {
    const now = new Date("2025-12-31T23:59:59Z");
    await expect(createMigration(appDir, "add_comment", { ...options, now })).rejects.toThrow(
      "would not run after the latest one, 20260101000000_init",
    );
  });
});
