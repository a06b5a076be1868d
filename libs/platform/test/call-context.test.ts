/**
 * currentCall: the call a piece of code runs for, in every kind of handler
 * and across the awaits inside it, and never outside of one.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createClient, createRouterTransport, type HandlerContext } from "@connectrpc/connect";
import { UserService } from "@meridian/proto/meridian/user/v1/user_pb";
import { createTestClient, drain, protocols } from "@meridian/testkit";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { bindCallContext, currentCall, handlerContextKey, runInCall } from "../src/call-context.js";
import { handlerContext, signal, startTestServer, type TestServer } from "./support.js";

/** The x-tag header of the current call, or "(none)" outside of one. */
const currentTag = () => {
  const call = currentCall();
  return call === undefined ? "(none)" : (call.requestHeader.get("x-tag") ?? "(untagged)");
};

describe("currentCall outside of calls", () => {
  it("is undefined", async () => {
    expect(currentCall()).toBeUndefined();
    await sleep(1);
    expect(currentCall()).toBeUndefined();
  });

  it("runInCall makes a call current for a function and what it awaits, and only for it", async () => {
    const call = handlerContext({ requestHeader: { "x-tag": "job" } });
    const result = await runInCall(call, async () => {
      expect(currentCall()).toBe(call);
      await sleep(1);
      await new Promise(setImmediate);
      return currentTag();
    });
    expect(result).toBe("job");
    expect(currentCall()).toBeUndefined();
  });

  it("runInCall nests, the inner call winning inside it", () => {
    const outer = handlerContext({ requestHeader: { "x-tag": "outer" } });
    const inner = handlerContext({ requestHeader: { "x-tag": "inner" } });
    const seen = runInCall(outer, () => [currentTag(), runInCall(inner, currentTag), currentTag()]);
    expect(seen).toEqual(["outer", "inner", "outer"]);
  });
});

describe("currentCall in handlers served by startServer", () => {
  let server: TestServer;
  let seen: string[] = [];
  let contexts: { handler: HandlerContext; current: HandlerContext | undefined }[] = [];
  /** Holds GetUser handlers until released, so that calls overlap. */
  let gate = signal();

  beforeAll(async () => {
    server = await startTestServer({
      users: {
        async getUser(req, context) {
          contexts.push({ handler: context, current: currentCall() });
          seen.push(`${req.id}:start:${currentTag()}`);
          await gate.promise;
          await sleep(5);
          seen.push(`${req.id}:after awaits:${currentTag()}`);
          // Work handed to another tick without runInCall still belongs to the call.
          await new Promise<void>((resolve) =>
            setTimeout(() => {
              seen.push(`${req.id}:timer:${currentTag()}`);
              resolve();
            }, 1),
          );
          return {};
        },
        async *watchUsers(_req) {
          seen.push(`stream:before first:${currentTag()}`);
          yield {};
          seen.push(`stream:after first:${currentTag()}`);
          await sleep(5);
          yield {};
          seen.push(`stream:end:${currentTag()}`);
        },
        async importUsers(requests) {
          seen.push(`import:start:${currentTag()}`);
          for await (const row of requests) {
            seen.push(`import:${row.email}:${currentTag()}`);
          }
          return {};
        },
      },
    });
  });
  afterAll(() => server?.stop());
  beforeEach(() => {
    seen = [];
    contexts = [];
    gate = signal();
    gate.resolve();
  });

  describe.each(protocols)("over %s", (protocol) => {
    const client = () => createTestClient(UserService, server.url, protocol);

    it("is the call being handled, throughout a unary handler", async () => {
      await client().getUser({ id: "u" }, { headers: { "x-tag": "one" } });
      expect(seen).toEqual(["u:start:one", "u:after awaits:one", "u:timer:one"]);
      const [{ handler, current } = { handler: undefined, current: undefined }] = contexts;
      expect(current?.signal).toBe(handler?.signal);
      expect(current?.method.name).toBe("GetUser");
      expect(current?.service.typeName).toBe("meridian.user.v1.UserService");
      expect(current?.timeoutMs()).toBeGreaterThan(0);
    });

    it("keeps concurrent calls apart", async () => {
      gate = signal();
      const calls = ["a", "b", "c"].map((tag) =>
        client().getUser({ id: tag }, { headers: { "x-tag": tag } }),
      );
      while (contexts.length < 3) await sleep(5);
      gate.resolve();
      await Promise.all(calls);
      for (const tag of ["a", "b", "c"]) {
        expect(seen.filter((line) => line.startsWith(`${tag}:`))).toEqual([
          `${tag}:start:${tag}`,
          `${tag}:after awaits:${tag}`,
          `${tag}:timer:${tag}`,
        ]);
      }
    });

    it("is the call in every step of a server-streaming handler", async () => {
      const messages = await drain(client().watchUsers({}, { headers: { "x-tag": "watch" } }));
      expect(messages).toHaveLength(2);
      expect(seen).toEqual([
        "stream:before first:watch",
        "stream:after first:watch",
        "stream:end:watch",
      ]);
    });
  });

  it("is the call while a client-streaming handler reads its requests", async () => {
    async function* rows() {
      yield { email: "r1" };
      await sleep(5);
      yield { email: "r2" };
    }
    await createTestClient(UserService, server.url, "grpc").importUsers(rows(), {
      headers: { "x-tag": "import" },
    });
    expect(seen).toEqual(["import:start:import", "import:r1:import", "import:r2:import"]);
  });

  it("is undefined again in the test once calls are done", () => {
    expect(currentCall()).toBeUndefined();
  });
});

describe("bindCallContext on its own", () => {
  const routes =
    (seen: string[]) => (router: Parameters<Parameters<typeof createRouterTransport>[0]>[0]) =>
      router.service(UserService, {
        getUser() {
          seen.push(currentTag());
          return {};
        },
        async *watchUsers() {
          seen.push(currentTag());
          yield {};
          seen.push(currentTag());
        },
      });

  it("binds the call the request gate recorded", async () => {
    const seen: string[] = [];
    const client = createClient(
      UserService,
      createRouterTransport(routes(seen), {
        router: {
          interceptors: [bindCallContext()],
          requestGate: (context) => {
            context.values.set(handlerContextKey, context);
          },
        },
      }),
    );
    await client.getUser({}, { headers: { "x-tag": "gated" } });
    await drain(client.watchUsers({}, { headers: { "x-tag": "gated stream" } }));
    expect(seen).toEqual(["gated", "gated stream", "gated stream"]);
  });

  it("binds nothing when no gate recorded the call", async () => {
    const seen: string[] = [];
    const client = createClient(
      UserService,
      createRouterTransport(routes(seen), { router: { interceptors: [bindCallContext()] } }),
    );
    await client.getUser({}, { headers: { "x-tag": "ungated" } });
    await drain(client.watchUsers({}));
    expect(seen).toEqual(["(none)", "(none)", "(none)"]);
  });
});
