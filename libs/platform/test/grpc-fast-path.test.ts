/**
 * The direct gRPC path against Connect's stock adapter: the same service
 * behind `serverPath: "fast"` and `serverPath: "stock"`, every call of a
 * corpus sent as raw bytes to both, and the answers compared whole: HTTP
 * status, headers (but `date`), payload, trailers, resets. The handlers do
 * what real ones do: answer, set headers and trailers, fail with details and
 * metadata, fail with a domain error or a bug, run out of time, answer big
 * enough to be compressed. And the direct path must actually have served them.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { PreconditionFailureSchema } from "@meridian/proto/google/rpc/error_details_pb";
import { UserEventType, UserSchema, UserService } from "@meridian/proto/meridian/user/v1/user_pb";
import { callCorpus, type RawAnswer, rawGrpcClient } from "@meridian/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuthenticate } from "../src/auth.js";
import { NotFoundError } from "../src/errors.js";
import type { ServerPath } from "../src/server.js";
import { sendShared } from "../src/shared-answers.js";
import { generateSigningJwk, importSigningKey, TokenSigner, TokenVerifier } from "../src/tokens.js";
import { startTestServer, type TestServer } from "./support.js";

const readMaxBytes = 64 * 1024;
const ada = create(UserSchema, { id: "8f0c4a52-7d0e-4c0e-9d5e-2b1a3c4d5e6f", name: "Ada" });

/** The same event object for every WatchUsers stream, as a feed shares it. */
const sharedEvent = sendShared({
  kind: { case: "event" as const, value: { type: UserEventType.CREATED, user: ada } },
});

/** GetUser by id and WatchUsers by resume cursor, each value a kind of handler behaviour. */
const users: Partial<ServiceImpl<typeof UserService>> = {
  async *watchUsers({ resumeCursor }, context) {
    const heartbeat = (cursor: string) => ({
      kind: { case: "heartbeat" as const, value: { cursor } },
    });
    switch (resumeCursor) {
      case "three":
        yield heartbeat("1");
        yield sharedEvent;
        yield sharedEvent;
        return;
      case "headers":
        context.responseHeader.set("x-stream", "yes");
        yield heartbeat("1");
        context.responseTrailer.set("x-sent", "1");
        return;
      case "fail-first":
        throw new NotFoundError("feed", resumeCursor);
      case "fail-later":
        yield heartbeat("1");
        throw new ConnectError("feed broke", Code.Unavailable, { "retry-after": "1" });
      case "big":
        yield {
          kind: { case: "event" as const, value: { user: { ...ada, name: "y".repeat(4000) } } },
        };
        return;
      case "slow":
        yield heartbeat("1");
        await sleep(10_000, undefined, { signal: context.signal });
        return;
      case "":
        return;
      default:
        throw new TypeError("a bug in a stream");
    }
  },
  async getUser({ id }, context) {
    switch (id) {
      case "headers":
        context.responseHeader.set("x-served-by", "test");
        context.responseTrailer.set("x-rows", "1");
        return { user: ada };
      case "details":
        throw new ConnectError("quota exhausted", Code.ResourceExhausted, { "retry-after": "30" }, [
          {
            desc: PreconditionFailureSchema,
            value: { violations: [{ type: "QUOTA", subject: "ada", description: "spent" }] },
          },
        ]);
      case "domain":
        throw new NotFoundError("user", id);
      case "bug":
        throw new TypeError("cannot read properties of undefined");
      case "slow":
        await sleep(10_000, undefined, { signal: context.signal });
        return { user: ada };
      case "seen": {
        // What a handler sees of the request headers, read every way Headers allows.
        const h = context.requestHeader;
        const seen = {
          te: h.get("TE"),
          has: h.has("content-type"),
          all: [...h],
          keys: [...h.keys()],
        };
        return { user: { ...ada, name: JSON.stringify(seen) } };
      }
      case "big":
        return { user: { ...ada, name: "x".repeat(5000) } };
      case "":
        throw new ConnectError("id is required", Code.InvalidArgument);
      default:
        return { user: { ...ada, id } };
    }
  },
};

describe("the direct gRPC path answers exactly as Connect's adapter does", () => {
  const servers = {} as Record<ServerPath, TestServer>;
  let token: string;

  beforeAll(async () => {
    const key = await importSigningKey(JSON.stringify(await generateSigningJwk()));
    token = (await new TokenSigner("user-service", key).sign({ subject: ada.id, ttlSeconds: 600 }))
      .token;
    const verifier = new TokenVerifier({
      issuers: [{ issuer: "user-service", keys: [key], issuesUserTokens: true }],
    });
    for (const serverPath of ["fast", "stock"] as const) {
      servers[serverPath] = await startTestServer({
        users,
        serverPath,
        readMaxBytes,
        authenticate: createAuthenticate({ verifier }),
      });
    }
  });
  afterAll(async () => {
    await Promise.all(Object.values(servers).map((server) => server.stop()));
  });

  const corpus = () =>
    callCorpus(UserService, {
      token,
      readMaxBytes,
      kinds: ["unary", "server_streaming"],
      samples: {
        WatchUsers: ["three", "headers", "fail-first", "fail-later", "big", "slow", "bug"].map(
          (resumeCursor) => ({ resumeCursor }),
        ),
        GetUser: ["ada", "headers", "details", "domain", "bug", "slow", "big"].map((id) => ({
          id,
        })),
      },
    });

  it("for every call of the corpus", async () => {
    const cases = corpus();
    const fast = rawGrpcClient(servers.fast.url);
    const stock = rawGrpcClient(servers.stock.url);
    const differences: string[] = [];
    try {
      await Promise.all(
        cases.map(async (call) => {
          // "slow" sends a 50 s deadline too: keep it short so both time out alike.
          const headers = /^(GetUser|WatchUsers): request 6/.test(call.name)
            ? { ...call.headers, "grpc-timeout": "200m" }
            : call.headers;
          const [a, b] = await Promise.all([
            fast.call({ ...call, headers }),
            stock.call({ ...call, headers }),
          ]);
          const diff = compare(a, b);
          if (diff) differences.push(`${call.name}: ${diff}`);
        }),
      );
    } finally {
      await Promise.all([fast.close(), stock.close()]);
    }
    expect(differences).toEqual([]);
    expect(cases.length).toBeGreaterThan(100);
    // GetUser is the one method implemented here; Connect keeps what only it handles.
    const direct = cases.filter(
      (c) =>
        /\/(GetUser|WatchUsers)$/.test(c.path) && !/unknown grpc-encoding|JSON codec/.test(c.name),
    );
    expect(servers.fast.directCalls).toBe(direct.length);
    expect(servers.stock.directCalls).toBe(0);
  }, 60_000);
});

function compare(a: RawAnswer, b: RawAnswer): string | undefined {
  const show = (x: RawAnswer) =>
    JSON.stringify({
      status: x.status,
      headers: x.headers,
      trailers: x.trailers,
      body: x.body.toString("base64"),
      rst: x.rstCode,
    });
  return show(a) === show(b) ? undefined : `\n  fast:  ${show(a)}\n  stock: ${show(b)}`;
}
