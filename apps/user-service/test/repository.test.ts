/**
 * UserRepository on a real database: GetUser's SQL statement returns exactly
 * what Prisma's model returns.
 */
import { fileURLToPath } from "node:url";
import { type Database, NotFoundError } from "@meridian/platform";
import { type OpenTestDatabase, openTestDatabase, testDatabaseKinds } from "@meridian/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrismaClient } from "../src/generated/prisma/client.js";
import { UserRepository, userColumns } from "../src/repository.js";

const databaseKinds = await testDatabaseKinds();
const migrationsDir = fileURLToPath(new URL("../prisma/migrations", import.meta.url));

describe.each(databaseKinds)("UserRepository on $name", (kind) => {
  let opened: OpenTestDatabase;
  let database: Database;
  let prisma: PrismaClient;
  let users: UserRepository;
  beforeAll(async () => {
    opened = await openTestDatabase(kind, migrationsDir);
    database = opened.database;
    prisma = new PrismaClient({ adapter: database.adapter });
    users = new UserRepository(prisma);
  });
  afterAll(async () => {
    await prisma?.$disconnect();
    await opened?.close();
  });

  it("selects every column of a user as Prisma's model reads it", async () => {
    const user = await users.create(
      { email: `${crypto.randomUUID()}@example.com`, name: "Ada", department: "Engines" },
      { passwordHash: "scrypt$hash", role: "ADMIN" },
    );
    const [raw] = await prisma.$queryRaw<unknown[]>`
      SELECT ${userColumns} FROM users WHERE id = ${user.id}::uuid`;
    expect(raw).toEqual(await prisma.user.findUnique({ where: { id: user.id } }));
    expect(await users.get(user.id)).toEqual(user);
  });

  it("answers NOT_FOUND for a user that does not exist", async () => {
    await expect(users.get(crypto.randomUUID())).rejects.toBeInstanceOf(NotFoundError);
  });
});
