/**
 * Who may call what on user-service: sign-up and sign-in are open, tokens are
 * verified before a call's body is read, and customers act only on themselves.
 */
import { Code } from "@connectrpc/connect";
import { generateSigningJwk, importSigningKey, TokenSigner } from "@meridian/platform";
import { UserRole } from "@meridian/proto/meridian/user/v1/user_pb";
import { callError, type TestDatabase, testDatabaseKinds } from "@meridian/testkit";
import { createLocalJWKSet, type JSONWebKeySet, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ServiceUnderTest, startForTest, testPassword, uniqueEmail } from "./harness.js";

const databaseKinds = await testDatabaseKinds();

describe.each(databaseKinds)("UserService auth on $name", (kind) => {
  let db: TestDatabase;
  let service: ServiceUnderTest;
  const adminEmail = uniqueEmail("admin");
  beforeAll(async () => {
    db = await kind.create();
    service = await startForTest(db, {
      BOOTSTRAP_ADMIN_EMAIL: adminEmail,
      BOOTSTRAP_ADMIN_PASSWORD: "admin password 1",
    });
  });
  afterAll(async () => {
    await service?.stop();
    await db?.drop();
  });

  const anonymous = () => service.client("grpc", null);
  const signUp = async (label = "customer") => {
    const email = uniqueEmail(label);
    const { user } = await anonymous().createUser({ email, name: label, password: testPassword });
    const { accessToken } = await anonymous().authenticate({ email, password: testPassword });
    return { id: user?.id ?? "", email, token: accessToken };
  };

  it("signs up and authenticates without a token, and the token verifies against the published JWKS", async () => {
    const email = uniqueEmail("signup");
    const { user } = await anonymous().createUser({ email, name: "New", password: testPassword });
    const res = await anonymous().authenticate({
      email: email.toUpperCase(),
      password: testPassword,
    });
    expect(res.user?.id).toBe(user?.id);
    expect(res.expireTime).toBeDefined();

    const jwks = await fetch(`${service.url}/.well-known/jwks.json`);
    expect(jwks.status).toBe(200);
    expect(jwks.headers.get("content-type")).toBe("application/jwk-set+json");
    const document = (await jwks.json()) as JSONWebKeySet;
    expect(document.keys[0]).not.toHaveProperty("d");
    const { payload, protectedHeader } = await jwtVerify(
      res.accessToken,
      createLocalJWKSet(document),
      {
        issuer: "user-service",
        audience: "meridian",
      },
    );
    expect(protectedHeader.kid).toBe(document.keys[0]?.kid);
    expect(payload).toMatchObject({ sub: user?.id, roles: ["customer"] });
  });

  it("refuses a wrong password and an unknown email alike", async () => {
    const { email } = await signUp();
    const wrong = await callError(
      anonymous().authenticate({ email, password: "not the password" }),
    );
    const unknown = await callError(
      anonymous().authenticate({ email: uniqueEmail("nobody"), password: testPassword }),
    );
    expect(wrong.code).toBe(Code.Unauthenticated);
    expect(unknown.code).toBe(Code.Unauthenticated);
    expect(wrong.rawMessage).toBe(unknown.rawMessage);
  });

  it("requires a password of 8 to 200 characters at sign-up", async () => {
    const missing = await callError(anonymous().createUser({ email: uniqueEmail(), name: "N" }));
    expect(missing.code).toBe(Code.InvalidArgument);
    expect(missing.rawMessage).toContain("password: must not be empty");
    const short = await callError(
      anonymous().createUser({ email: uniqueEmail(), name: "N", password: "short" }),
    );
    expect(short.rawMessage).toContain("password: must be 8 to 200 characters, got 5");
  });

  it("refuses calls without a valid token with UNAUTHENTICATED", async () => {
    const { id } = await signUp();
    const none = await callError(anonymous().getUser({ id }));
    expect(none.code).toBe(Code.Unauthenticated);
    expect(none.rawMessage).toContain("authorization: Bearer");

    const garbage = await callError(service.client("grpc", "not-a-jwt").getUser({ id }));
    expect(garbage.code).toBe(Code.Unauthenticated);

    const expired = await callError(
      service.client("grpc", await service.token(id, ["customer"], -60)).getUser({ id }),
    );
    expect(expired.code).toBe(Code.Unauthenticated);
    expect(expired.rawMessage).toContain("expired");

    const stranger = new TokenSigner(
      "user-service",
      await importSigningKey(JSON.stringify(await generateSigningJwk())),
    );
    const forged = (await stranger.sign({ subject: id, roles: ["admin"], ttlSeconds: 60 })).token;
    const forgedError = await callError(service.client("grpc", forged).getUser({ id }));
    expect(forgedError.code).toBe(Code.Unauthenticated);
  });

  it("logs refused calls like any other call", async () => {
    await callError(anonymous().listUsers({}));
    expect(
      service.logs.records.some(
        (r) => r.rpc === "meridian.user.v1.UserService/ListUsers" && r.code === "UNAUTHENTICATED",
      ),
    ).toBe(true);
  });

  it("lets customers act on themselves only", async () => {
    const me = await signUp("me");
    const other = await signUp("other");
    const mine = service.client("grpc", me.token);
    expect((await mine.getUser({ id: me.id })).user?.email).toBe(me.email);
    expect((await callError(mine.getUser({ id: other.id }))).code).toBe(Code.PermissionDenied);
    expect((await callError(mine.deleteUser({ id: other.id }))).code).toBe(Code.PermissionDenied);
    const listing = await callError(mine.listUsers({}));
    expect(listing.code).toBe(Code.PermissionDenied);
    expect(listing.rawMessage).toContain("only an admin may");
    const watching = await callError(mine.watchUsers({})[Symbol.asyncIterator]().next());
    expect(watching.code).toBe(Code.PermissionDenied);
  });

  it("bootstraps an admin who may list everyone", async () => {
    const { accessToken, user } = await anonymous().authenticate({
      email: adminEmail,
      password: "admin password 1",
    });
    expect(user?.role).toBe(UserRole.ADMIN);
    const { users } = await service.client("grpc", accessToken).listUsers({ pageSize: 1000 });
    expect(users.some((u) => u.email === adminEmail)).toBe(true);
  });

  it("keeps health public", async () => {
    const res = await service.health().check({});
    expect(res.status).toBeDefined();
  });
});
