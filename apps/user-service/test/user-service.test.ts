import { Code } from "@connectrpc/connect";
import { BadRequestSchema, ResourceInfoSchema } from "@meridian/proto/google/rpc/error_details_pb";
import { UserRole } from "@meridian/proto/meridian/user/v1/user_pb";
import { callError, protocols, type TestDatabase, testDatabaseKinds } from "@meridian/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ServiceUnderTest, startForTest, testPassword, uniqueEmail } from "./harness.js";

const databaseKinds = await testDatabaseKinds();

describe.each(databaseKinds)("UserService on $name", (kind) => {
  let db: TestDatabase;
  let service: ServiceUnderTest;
  beforeAll(async () => {
    db = await kind.create();
    service = await startForTest(db);
  });
  afterAll(async () => {
    await service?.stop();
    await db?.drop();
  });

  describe.each(protocols)("over %s", (protocol) => {
    const client = () => service.client(protocol);

    it("creates a user, normalizing the email, and reads it back", async () => {
      const email = uniqueEmail("Ada");
      const { user } = await client().createUser({
        password: testPassword,
        email: `  ${email.toUpperCase()} `,
        name: " Ada Lovelace ",
        department: "engineering",
      });
      expect(user).toMatchObject({
        email: email.toLowerCase(),
        name: "Ada Lovelace",
        department: "engineering",
        role: UserRole.CUSTOMER,
      });
      expect(user?.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(user?.createTime).toBeDefined();
      const { user: fetched } = await client().getUser({ id: user?.id ?? "" });
      expect(fetched).toEqual(user);
    });

    it("refuses a second user with the same email, whatever its case", async () => {
      const email = uniqueEmail();
      await client().createUser({ password: testPassword, email, name: "First" });
      const error = await callError(
        client().createUser({ password: testPassword, email: email.toUpperCase(), name: "Second" }),
      );
      expect(error.code).toBe(Code.AlreadyExists);
      expect(error.rawMessage).toBe(`a user with email "${email}" already exists`);
      expect(error.findDetails(ResourceInfoSchema)[0]).toMatchObject({
        resourceType: "user",
        resourceName: email,
      });
    });

    it("names every invalid field of a new user", async () => {
      const error = await callError(
        client().createUser({ password: testPassword, email: "not-an-email", name: "   " }),
      );
      expect(error.code).toBe(Code.InvalidArgument);
      const [badRequest] = error.findDetails(BadRequestSchema);
      expect(badRequest?.fieldViolations.map((v) => [v.field, v.description])).toEqual([
        ["email", 'must be an email address like name@example.com, got "not-an-email"'],
        ["name", "must not be empty"],
      ]);
      expect(error.rawMessage).toContain("email: must be an email address");
    });

    it("answers NOT_FOUND for an unknown id and INVALID_ARGUMENT for a malformed one", async () => {
      const missing = "00000000-0000-4000-8000-000000000000";
      const notFound = await callError(client().getUser({ id: missing }));
      expect(notFound.code).toBe(Code.NotFound);
      expect(notFound.rawMessage).toBe(`user "${missing}" not found`);
      const malformed = await callError(client().getUser({ id: "42" }));
      expect(malformed.code).toBe(Code.InvalidArgument);
      expect(malformed.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("id");
    });

    it("lists a department page by page, each user exactly once, oldest first", async () => {
      const department = `dept-${protocol}-${Math.random().toString(36).slice(2, 8)}`;
      const created: string[] = [];
      for (let i = 0; i < 5; i++) {
        const { user } = await client().createUser({
          password: testPassword,
          email: uniqueEmail(),
          name: `U${i}`,
          department,
        });
        created.push(user?.id ?? "");
      }
      await client().createUser({
        password: testPassword,
        email: uniqueEmail(),
        name: "elsewhere",
        department: "other",
      });
      const seen: string[] = [];
      let pageToken = "";
      let pages = 0;
      do {
        const page = await client().listUsers({ department, pageSize: 2, pageToken });
        expect(page.users.length).toBeLessThanOrEqual(2);
        seen.push(...page.users.map((u) => u.id));
        pageToken = page.nextPageToken;
        pages++;
      } while (pageToken !== "");
      expect(pages).toBe(3);
      expect(seen).toEqual(created);
    });

    it("rejects out-of-range page sizes and tokens that are malformed or for another filter", async () => {
      for (const pageSize of [-1, 1001]) {
        const error = await callError(client().listUsers({ pageSize }));
        expect(error.code).toBe(Code.InvalidArgument);
        expect(error.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("page_size");
      }
      const malformed = await callError(client().listUsers({ pageToken: "not a token" }));
      expect(malformed.code).toBe(Code.InvalidArgument);
      expect(malformed.rawMessage).toContain("page_token: is not a page token");

      const department = `dept-${Math.random().toString(36).slice(2, 8)}`;
      for (let i = 0; i < 2; i++) {
        await client().createUser({
          password: testPassword,
          email: uniqueEmail(),
          name: "x",
          department,
        });
      }
      const { nextPageToken } = await client().listUsers({ department, pageSize: 1 });
      expect(nextPageToken).not.toBe("");
      const mismatch = await callError(
        client().listUsers({ department: "other", pageToken: nextPageToken }),
      );
      expect(mismatch.code).toBe(Code.InvalidArgument);
      expect(mismatch.rawMessage).toContain("different filter");
    });

    it("updates only the fields named in the mask", async () => {
      const { user } = await client().createUser({
        password: testPassword,
        email: uniqueEmail(),
        name: "Before",
        department: "a",
      });
      const { user: updated } = await client().updateUser({
        user: { id: user?.id, name: "After", department: "ignored" },
        updateMask: { paths: ["name"] },
      });
      expect(updated).toMatchObject({ name: "After", department: "a", email: user?.email });
      expect(updated?.updateTime).not.toEqual(user?.updateTime);
    });

    it("rejects bad updates precisely", async () => {
      const { user } = await client().createUser({
        password: testPassword,
        email: uniqueEmail(),
        name: "U",
      });
      const taken = uniqueEmail();
      await client().createUser({ password: testPassword, email: taken, name: "Other" });
      const id = user?.id ?? "";

      const emptyMask = await callError(client().updateUser({ user: { id, name: "x" } }));
      expect(emptyMask.code).toBe(Code.InvalidArgument);
      expect(emptyMask.rawMessage).toContain("update_mask: must name the fields to change");

      const unknownPath = await callError(
        client().updateUser({ user: { id }, updateMask: { paths: ["role"] } }),
      );
      expect(unknownPath.code).toBe(Code.InvalidArgument);
      expect(unknownPath.rawMessage).toContain('cannot update "role"');

      const badValue = await callError(
        client().updateUser({ user: { id, email: "nope" }, updateMask: { paths: ["email"] } }),
      );
      expect(badValue.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe(
        "user.email",
      );

      const conflict = await callError(
        client().updateUser({ user: { id, email: taken }, updateMask: { paths: ["email"] } }),
      );
      expect(conflict.code).toBe(Code.AlreadyExists);

      const missing = await callError(
        client().updateUser({
          user: { id: "00000000-0000-4000-8000-000000000001", name: "x" },
          updateMask: { paths: ["name"] },
        }),
      );
      expect(missing.code).toBe(Code.NotFound);
    });

    it("deletes a user once; the second delete is NOT_FOUND", async () => {
      const { user } = await client().createUser({
        password: testPassword,
        email: uniqueEmail(),
        name: "Doomed",
      });
      const id = user?.id ?? "";
      await client().deleteUser({ id });
      expect((await callError(client().getUser({ id }))).code).toBe(Code.NotFound);
      expect((await callError(client().deleteUser({ id }))).code).toBe(Code.NotFound);
    });
  });

  describe("ImportUsers (client streaming over gRPC)", () => {
    it("creates the good rows and reports each bad one by position", async () => {
      const existing = uniqueEmail("existing");
      await service
        .client()
        .createUser({ password: testPassword, email: existing, name: "Already here" });
      const fresh = [uniqueEmail("a"), uniqueEmail("b"), uniqueEmail("c")];
      async function* rows() {
        yield { email: fresh[0], name: "A" };
        yield { email: "broken", name: "Bad email" };
        yield { email: fresh[1], name: "B", department: "ops" };
        yield { email: existing, name: "Duplicate of an existing user" };
        yield { email: fresh[0]?.toUpperCase(), name: "Duplicate within the import" };
        yield { email: fresh[2], name: "" };
      }
      const summary = await service.client().importUsers(rows());
      expect(summary.createdCount).toBe(2);
      expect(summary.failedCount).toBe(4);
      expect(
        summary.failures.map((f) => ({ row: f.row, reason: f.reason, field: f.field })),
      ).toEqual([
        { row: 1, reason: 1, field: "email" },
        { row: 3, reason: 2, field: "email" },
        { row: 4, reason: 2, field: "email" },
        { row: 5, reason: 1, field: "name" },
      ]);
      expect(summary.failures[2]?.message).toContain("earlier row of this import");
      const { users } = await service.client().listUsers({ department: "ops", pageSize: 1000 });
      expect(users.map((u) => u.email)).toContain(fresh[1]);
    });
  });

  describe("health", () => {
    it("is SERVING for the server and for UserService, NOT_FOUND for unknown services", async () => {
      expect((await service.health().check({})).status).toBe(1);
      expect(
        (await service.health().check({ service: "meridian.user.v1.UserService" })).status,
      ).toBe(1);
      const error = await callError(service.health().check({ service: "nope.v1.Nope" }));
      expect(error.code).toBe(Code.NotFound);
    });
  });

  describe("calls", () => {
    it("are logged one line each, with method, code, duration and peer", async () => {
      await callError(service.client().getUser({ id: "00000000-0000-4000-8000-000000000002" }));
      const record = service.logs.records.findLast((r) => r.msg === "rpc");
      expect(record).toMatchObject({
        rpc: "meridian.user.v1.UserService/GetUser",
        code: "NOT_FOUND",
        peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      });
      expect(typeof record?.ms).toBe("number");
    });
  });
});

describe("request size limit", () => {
  it("refuses a request larger than READ_MAX_BYTES with RESOURCE_EXHAUSTED", async () => {
    const [kind] = databaseKinds;
    const db = await (kind as NonNullable<typeof kind>).create();
    const service = await startForTest(db, { READ_MAX_BYTES: "1024" });
    try {
      const error = await callError(
        service
          .client()
          .createUser({ password: testPassword, email: uniqueEmail(), name: "x".repeat(2000) }),
      );
      expect(error.code).toBe(Code.ResourceExhausted);
      // A request under the limit on the same server still works.
      const { user } = await service
        .client()
        .createUser({ password: testPassword, email: uniqueEmail(), name: "small" });
      expect(user?.name).toBe("small");
    } finally {
      await service.stop();
      await db.drop();
    }
  });
});
