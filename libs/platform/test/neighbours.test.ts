/**
 * The credentials a service sends its neighbours (attachCredentials), on its
 * own and end to end: a handler on server A calls neighbour B, which
 * verifies what it gets against A's published keys.
 */
import { type Client, Code, createClient, createRouterTransport } from "@connectrpc/connect";
import { UserService } from "@meridian/proto/meridian/user/v1/user_pb";
import {
  callError,
  createTestClient,
  protocols,
  startTestIssuer,
  type TestIssuer,
} from "@meridian/testkit";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createAuthenticate, principalOf } from "../src/auth.js";
import { runInCall } from "../src/call-context.js";
import {
  attachCredentials,
  createNeighbourTransport,
  neighbourConnection,
  neighbourInterceptors,
} from "../src/neighbours.js";
import {
  generateSigningJwk,
  importSigningKey,
  jwksPath,
  type Principal,
  ServiceIdentity,
  TokenSigner,
  TokenVerifier,
} from "../src/tokens.js";
import { handlerContext, startTestServer, type TestServer } from "./support.js";

async function serviceIdentity(name: string): Promise<ServiceIdentity> {
  const key = await importSigningKey(JSON.stringify(await generateSigningJwk()));
  return new ServiceIdentity(new TokenSigner(name, key));
}

/**
 * An in-memory neighbour that reports the authorization header it got, so
 * the client's interceptors run exactly as over the network.
 */
function echoNeighbour(interceptors: Parameters<typeof createRouterTransport>[1]) {
  return createClient(
    UserService,
    createRouterTransport(
      (router) =>
        router.service(UserService, {
          getUser: (_req, context) => ({
            user: { id: context.requestHeader.get("authorization") ?? "(none)" },
          }),
        }),
      interceptors,
    ),
  );
}
const authorizationSent = async (client: Client<typeof UserService>) =>
  (await client.getUser({})).user?.id;

describe("attachCredentials", () => {
  let identity: ServiceIdentity;
  beforeAll(async () => {
    identity = await serviceIdentity("service-a");
  });
  const viaCredentials = (who: "caller" | "service", own?: ServiceIdentity) =>
    echoNeighbour({ transport: { interceptors: [attachCredentials(who, own)] } });
  const inCall = <T>(authorization: string | undefined, fn: () => Promise<T>) =>
    runInCall(
      handlerContext({
        requestHeader: authorization === undefined ? {} : { authorization },
      }),
      fn,
    );

  it('needs the service identity for identity "service"', () => {
    expect(() => attachCredentials("service", undefined)).toThrow(
      'identity "service" needs the service\'s own identity (serviceIdentity)',
    );
  });

  it('"caller" forwards the incoming authorization header exactly', async () => {
    const client = viaCredentials("caller", identity);
    for (const incoming of ["Bearer abc.def.ghi", "bearer   abc.def.ghi"]) {
      expect(await inCall(incoming, () => authorizationSent(client))).toBe(incoming);
    }
  });

  it('"caller" uses the service identity when the call came without a token', async () => {
    const client = viaCredentials("caller", identity);
    const sent = await inCall(undefined, () => authorizationSent(client));
    expect(sent).toBe(`Bearer ${await identity.token()}`);
    expect(await inCall("", () => authorizationSent(client))).toBe(sent);
  });

  it('"caller" uses the service identity outside of any call', async () => {
    const client = viaCredentials("caller", identity);
    expect(await authorizationSent(client)).toBe(`Bearer ${await identity.token()}`);
  });

  it('"caller" without a service identity sends nothing when there is nothing to forward', async () => {
    const client = viaCredentials("caller");
    expect(await authorizationSent(client)).toBe("(none)");
    expect(await inCall("Bearer t", () => authorizationSent(client))).toBe("Bearer t");
  });

  it('"service" always sends the service identity', async () => {
    const client = viaCredentials("service", identity);
    const expected = `Bearer ${await identity.token()}`;
    expect(await inCall("Bearer user-token", () => authorizationSent(client))).toBe(expected);
    expect(await inCall(undefined, () => authorizationSent(client))).toBe(expected);
    expect(await authorizationSent(client)).toBe(expected);
  });

  it("keeps an authorization header the outgoing call sets itself", async () => {
    for (const who of ["caller", "service"] as const) {
      const client = viaCredentials(who, identity);
      const sent = await inCall("Bearer incoming", async () => {
        return (await client.getUser({}, { headers: { authorization: "Bearer explicit" } })).user
          ?.id;
      });
      expect(sent).toBe("Bearer explicit");
    }
  });
});

describe("neighbourInterceptors", () => {
  it("runs the given interceptors first, then the deadline, then the credentials", async () => {
    const identity = await serviceIdentity("service-a");
    const seenByOwn: (string | null)[] = [];
    const interceptors = neighbourInterceptors({
      identity: "service",
      serviceIdentity: identity,
      deadlineMarginMs: 100,
      interceptors: [
        (next) => (req) => {
          seenByOwn.push(req.header.get("authorization"));
          return next(req);
        },
      ],
    });
    expect(interceptors).toHaveLength(3);
    const client = echoNeighbour({ transport: { interceptors } });
    const deadlines: (number | undefined)[] = [];
    const deadlineClient = createClient(
      UserService,
      createRouterTransport(
        (router) =>
          router.service(UserService, {
            getUser: (_req, context) => {
              deadlines.push(context.timeoutMs());
              return {};
            },
          }),
        { transport: { interceptors } },
      ),
    );
    const sent = await runInCall(handlerContext({ timeoutMs: 2_000 }), async () => {
      await deadlineClient.getUser({});
      return authorizationSent(client);
    });
    expect(sent).toBe(`Bearer ${await identity.token()}`);
    expect(seenByOwn).toEqual([null, null]);
    expect(deadlines[0]).toBeLessThanOrEqual(1_900);
    expect(deadlines[0]).toBeGreaterThan(1_000);
  });

  it("keeps connections alive with pings and closes idle ones", () => {
    expect(neighbourConnection).toEqual({
      pingIntervalMs: 30_000,
      pingTimeoutMs: 10_000,
      idleConnectionTimeoutMs: 300_000,
    });
  });
});

describe("credentials from server A to neighbour B", () => {
  let issuer: TestIssuer;
  let identity: ServiceIdentity;
  let a: TestServer;
  let b: TestServer;
  let asCaller: Client<typeof UserService>;
  let asService: Client<typeof UserService>;
  let asCallerWithoutIdentity: Client<typeof UserService>;
  let seenByB: { authorization: string | null; principal: Principal }[] = [];

  beforeAll(async () => {
    issuer = await startTestIssuer("user-service");
    const aKey = await importSigningKey(JSON.stringify(await generateSigningJwk()));
    identity = new ServiceIdentity(new TokenSigner("service-a", aKey));
    const trustUsers = {
      issuer: "user-service",
      keys: new URL(jwksPath, issuer.url),
      issuesUserTokens: true,
    };
    a = await startTestServer({
      name: "service-a",
      publishedKeys: [aKey],
      authenticate: createAuthenticate({
        verifier: new TokenVerifier({ issuers: [trustUsers] }),
        publicProcedures: ["meridian.user.v1.UserService/GetUser"],
      }),
      users: {
        // The request's id picks the neighbour client A calls B with.
        async getUser(req) {
          const via =
            req.id === "service"
              ? asService
              : req.id === "no-identity"
                ? asCallerWithoutIdentity
                : asCaller;
          const headers =
            req.id === "explicit"
              ? { authorization: `Bearer ${await issuer.userToken("u-explicit")}` }
              : undefined;
          return via.getUser({}, { headers });
        },
      },
    });
    b = await startTestServer({
      name: "service-b",
      authenticate: createAuthenticate({
        verifier: new TokenVerifier({
          issuers: [
            trustUsers,
            // B checks A's tokens against the keys A publishes on its own port.
            { issuer: "service-a", keys: new URL(jwksPath, a.url), issuesUserTokens: false },
          ],
        }),
      }),
      users: {
        getUser(_req, context) {
          seenByB.push({
            authorization: context.requestHeader.get("authorization"),
            principal: principalOf(context),
          });
          return {};
        },
      },
    });
    const neighbour = (identityKind: "caller" | "service", own?: ServiceIdentity) =>
      createClient(
        UserService,
        createNeighbourTransport({
          baseUrl: b.url,
          identity: identityKind,
          serviceIdentity: own,
          deadlineMarginMs: 10,
        }),
      );
    asCaller = neighbour("caller", identity);
    asService = neighbour("service", identity);
    asCallerWithoutIdentity = neighbour("caller");
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await issuer?.close();
  });
  beforeEach(() => {
    seenByB = [];
  });

  describe.each(protocols)("when A's caller uses %s", (protocol) => {
    const clientOfA = (token?: string) => createTestClient(UserService, a.url, protocol, token);

    it("forwards the caller's token exactly", async () => {
      const token = await issuer.userToken("u1", ["customer"]);
      await clientOfA(token).getUser({ id: "caller" });
      expect(seenByB).toEqual([
        {
          authorization: `Bearer ${token}`,
          principal: { kind: "user", userId: "u1", roles: ["customer"] },
        },
      ]);
    });

    it("forwards an unusually written header as it came", async () => {
      const token = await issuer.userToken("u1", ["customer"]);
      await clientOfA().getUser(
        { id: "caller" },
        { headers: { authorization: `bearer  ${token}` } },
      );
      expect(seenByB[0]?.authorization).toBe(`bearer  ${token}`);
    });

    it("calls as A itself when A's caller sent no token", async () => {
      await clientOfA().getUser({ id: "caller" });
      expect(seenByB).toHaveLength(1);
      const { authorization, principal } = seenByB[0] as (typeof seenByB)[number];
      expect(principal).toEqual({ kind: "service", service: "service-a" });
      const claims = decodeJwt((authorization as string).replace(/^Bearer /, ""));
      expect(claims).toMatchObject({ iss: "service-a", sub: "service-a", aud: "meridian" });
    });

    it('calls as A itself with identity "service", whoever A\'s caller is', async () => {
      const token = await issuer.userToken("a1", ["admin"]);
      await clientOfA(token).getUser({ id: "service" });
      expect(seenByB).toHaveLength(1);
      expect(seenByB[0]?.authorization).not.toContain(token);
      expect(seenByB[0]?.principal).toEqual({ kind: "service", service: "service-a" });
    });

    it("keeps the authorization header A's handler sets on the call", async () => {
      const token = await issuer.userToken("u1");
      await clientOfA(token).getUser({ id: "explicit" });
      expect(seenByB[0]?.principal).toEqual({
        kind: "user",
        userId: "u-explicit",
        roles: ["customer"],
      });
    });
  });

  it("reuses A's service token across calls", async () => {
    await createTestClient(UserService, a.url, "grpc").getUser({ id: "service" });
    await createTestClient(UserService, a.url, "grpc").getUser({ id: "service" });
    expect(seenByB).toHaveLength(2);
    expect(seenByB[1]?.authorization).toBe(seenByB[0]?.authorization);
  });

  it("calls as A itself from outside any call", async () => {
    await asCaller.getUser({});
    expect(seenByB[0]?.principal).toEqual({ kind: "service", service: "service-a" });
  });

  it("hides B's refusal of a call without credentials from A's caller: INTERNAL", async () => {
    const error = await callError(
      createTestClient(UserService, a.url, "grpc").getUser({ id: "no-identity" }),
    );
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toBe("internal error");
    expect(seenByB).toEqual([]);
  });
});
