/**
 * Deadlines: normalizeDeadline on its own and as startServer applies it to
 * every request, and propagateDeadline on its own and end to end, with a
 * handler on server A calling neighbour B over gRPC.
 */
import type { IncomingHttpHeaders } from "node:http";
import { create } from "@bufbuild/protobuf";
import {
  type CallOptions,
  type Client,
  Code,
  ConnectError,
  type ContextValues,
  createClient,
  createContextValues,
  type HandlerContext,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import {
  GetUserRequestSchema,
  type GetUserResponse,
  GetUserResponseSchema,
  UserService,
} from "@meridian/proto/meridian/user/v1/user_pb";
import { callError, createTestClient, drain, type Protocol, protocols } from "@meridian/testkit";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runInCall } from "../src/call-context.js";
import { formatGrpcTimeout, normalizeDeadline, propagateDeadline } from "../src/deadlines.js";
import { createNeighbourTransport } from "../src/neighbours.js";
import {
  aborted,
  handlerContext,
  signal,
  startTestServer,
  type TestServer,
  testDeadlines,
  within,
} from "./support.js";

/** setTimeout's limit: longer timers fire after 1 ms. */
const timerLimitMs = 2_147_483_647;
/** How Connect itself reads grpc-timeout: at most 8 digits. */
const grpcTimeoutSyntax = /^(\d{1,8})([HMSmun])$/;
const grpcUnitsMs: Record<string, number> = {
  H: 3_600_000,
  M: 60_000,
  S: 1_000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};

function grpcTimeoutMs(value: string): number {
  const match = grpcTimeoutSyntax.exec(value);
  if (match === null) throw new Error(`"${value}" is not a grpc-timeout Connect accepts`);
  return Number(match[1]) * (grpcUnitsMs[match[2] as string] as number);
}

describe("normalizeDeadline", () => {
  const policy = { defaultMs: 5_000, maxMs: 20_000 };
  const normalized = (
    headers: IncomingHttpHeaders,
    kind: "unary" | "server_streaming" | "client_streaming" | "bidi_streaming" = "unary",
  ) => {
    const copy = { ...headers };
    normalizeDeadline(copy, kind, policy);
    return copy;
  };

  it.each([
    "application/grpc",
    "application/grpc+proto",
    "application/grpc+json",
    "application/grpc-web+proto",
  ])("gives a %s unary call without a timeout the default, as grpc-timeout", (contentType) => {
    expect(normalized({ "content-type": contentType })).toEqual({
      "content-type": contentType,
      "grpc-timeout": "5000m",
    });
  });

  it.each([
    ["application/json", "unary"],
    ["application/proto", "unary"],
  ] as const)(
    "gives a %s %s call without a timeout the default, as connect-timeout-ms",
    (contentType, kind) => {
      expect(normalized({ "content-type": contentType }, kind)).toEqual({
        "content-type": contentType,
        "connect-timeout-ms": "5000",
      });
    },
  );

  it("treats a request without a content type (a Connect GET) as Connect", () => {
    expect(normalized({})).toEqual({ "connect-timeout-ms": "5000" });
  });

  it("leaves every kind of stream without a timeout without one", () => {
    for (const kind of ["server_streaming", "client_streaming", "bidi_streaming"] as const) {
      for (const contentType of ["application/grpc", "application/connect+json"]) {
        const headers = { "content-type": contentType };
        expect(normalized(headers, kind)).toEqual(headers);
      }
    }
  });

  it("keeps a long timeout on a client or bidi stream (a long import, a cart session)", () => {
    for (const kind of ["client_streaming", "bidi_streaming"] as const) {
      const headers = { "content-type": "application/grpc", "grpc-timeout": "2H" };
      expect(normalized(headers, kind)).toEqual(headers);
    }
  });

  it("leaves a timeout within the limit exactly as sent", () => {
    const cases = [
      { "content-type": "application/grpc", "grpc-timeout": "3S" },
      { "content-type": "application/grpc", "grpc-timeout": "20000m" },
      { "content-type": "application/grpc", "grpc-timeout": "1500000u" },
      { "content-type": "application/json", "connect-timeout-ms": "20000" },
      { "content-type": "application/json", "connect-timeout-ms": "0" },
    ];
    for (const headers of cases) expect(normalized(headers)).toEqual(headers);
  });

  it("caps a unary call's timeout above maxMs", () => {
    expect(normalized({ "content-type": "application/grpc", "grpc-timeout": "1H" })).toEqual({
      "content-type": "application/grpc",
      "grpc-timeout": "20000m",
    });
    expect(normalized({ "content-type": "application/grpc", "grpc-timeout": "99999999H" })).toEqual(
      { "content-type": "application/grpc", "grpc-timeout": "20000m" },
    );
    expect(
      normalized({ "content-type": "application/json", "connect-timeout-ms": "20001" }),
    ).toEqual({ "content-type": "application/json", "connect-timeout-ms": "20000" });
    expect(
      normalized({ "content-type": "application/json", "connect-timeout-ms": "9999999999" }),
    ).toEqual({ "content-type": "application/json", "connect-timeout-ms": "20000" });
  });

  it("keeps a server stream's long timeout up to the timer limit", () => {
    const long = { "content-type": "application/grpc", "grpc-timeout": "30H" };
    expect(normalized(long, "server_streaming")).toEqual(long);
    const connectLong = {
      "content-type": "application/connect+json",
      "connect-timeout-ms": "86400000",
    };
    expect(normalized(connectLong, "server_streaming")).toEqual(connectLong);
    expect(
      normalized(
        { "content-type": "application/connect+json", "connect-timeout-ms": "9999999999" },
        "server_streaming",
      )["connect-timeout-ms"],
    ).toBe(String(timerLimitMs));
  });

  // The timer limit in milliseconds has 10 digits, more than the 8 gRPC
  // allows: the cap must be written in a coarser unit.
  it("caps an absurd gRPC server-stream timeout to a grpc-timeout Connect accepts", () => {
    const headers = normalized(
      { "content-type": "application/grpc", "grpc-timeout": "99999999H" },
      "server_streaming",
    );
    const ms = grpcTimeoutMs(headers["grpc-timeout"] as string);
    expect(ms).toBeLessThanOrEqual(timerLimitMs);
    expect(ms).toBeGreaterThan(timerLimitMs - 60_000);
  });

  it("leaves unparseable values for Connect to reject", () => {
    const cases: IncomingHttpHeaders[] = [
      { "content-type": "application/grpc", "grpc-timeout": "soon" },
      { "content-type": "application/grpc", "grpc-timeout": "1.5S" },
      { "content-type": "application/grpc", "grpc-timeout": "123456789m" },
      { "content-type": "application/grpc", "grpc-timeout": "10s" },
      { "content-type": "application/grpc", "grpc-timeout": "" },
      { "content-type": "application/json", "connect-timeout-ms": "soon" },
      { "content-type": "application/json", "connect-timeout-ms": "-5" },
      { "content-type": "application/json", "connect-timeout-ms": "12345678901" },
    ];
    for (const headers of cases) {
      expect(normalized(headers)).toEqual(headers);
      expect(normalized(headers, "server_streaming")).toEqual(headers);
    }
  });

  it("reads the timeout header of the request's own protocol only", () => {
    // A gRPC request's connect-timeout-ms means nothing: it still gets the default.
    expect(
      normalized({ "content-type": "application/grpc", "connect-timeout-ms": "100" }),
    ).toMatchObject({ "grpc-timeout": "5000m", "connect-timeout-ms": "100" });
  });
});

describe("deadline normalization in startServer", () => {
  let server: TestServer;
  const seen: Array<number | undefined> = [];
  let handled = 0;
  beforeAll(async () => {
    server = await startTestServer({
      users: {
        getUser(_req, context) {
          handled++;
          seen.push(context.timeoutMs());
          return {};
        },
        async *watchUsers(_req, context) {
          handled++;
          seen.push(context.timeoutMs());
          yield {};
        },
      },
    });
  });
  afterAll(() => server?.stop());
  beforeEach(() => {
    seen.length = 0;
  });

  async function unaryTimeout(protocol: Protocol, options?: CallOptions) {
    await createTestClient(UserService, server.url, protocol).getUser({ id: "u1" }, options);
    expect(seen).toHaveLength(1);
    return seen[0];
  }
  async function streamTimeout(protocol: Protocol, options?: CallOptions) {
    const messages = await drain(
      createTestClient(UserService, server.url, protocol).watchUsers({}, options),
    );
    expect(messages).toHaveLength(1);
    expect(seen).toHaveLength(1);
    return seen[0];
  }

  describe.each(protocols)("over %s", (protocol) => {
    it("gives a unary call without a deadline the default", async () => {
      const ms = await unaryTimeout(protocol);
      expect(ms).toBeLessThanOrEqual(testDeadlines.defaultMs);
      expect(ms).toBeGreaterThan(testDeadlines.defaultMs - 1_000);
    });

    it("leaves a server stream without a deadline without one", async () => {
      expect(await streamTimeout(protocol)).toBeUndefined();
    });

    it("keeps a unary deadline below the maximum", async () => {
      const ms = await unaryTimeout(protocol, { timeoutMs: 12_000 });
      expect(ms).toBeLessThanOrEqual(12_000);
      expect(ms).toBeGreaterThan(11_000);
    });

    it("caps a unary deadline above the maximum", async () => {
      const ms = await unaryTimeout(protocol, { timeoutMs: 999_999 });
      expect(ms).toBeLessThanOrEqual(testDeadlines.maxMs);
      expect(ms).toBeGreaterThan(testDeadlines.maxMs - 1_000);
    });

    it("keeps a server stream's deadline above the unary maximum", async () => {
      const ms = await streamTimeout(protocol, { timeoutMs: 3_600_000 });
      expect(ms).toBeLessThanOrEqual(3_600_000);
      expect(ms).toBeGreaterThan(3_599_000);
    });
  });

  it('gives a unary call with grpc-timeout "99999999H" a sane deadline instead of an expired one', async () => {
    const ms = await unaryTimeout("grpc", { headers: { "grpc-timeout": "99999999H" } });
    expect(ms).toBeLessThanOrEqual(testDeadlines.maxMs);
    expect(ms).toBeGreaterThan(testDeadlines.maxMs - 1_000);
  });

  it("cuts a Connect server stream's absurd deadline to the timer limit", async () => {
    const ms = await streamTimeout("connect-json", {
      headers: { "connect-timeout-ms": "9999999999" },
    });
    expect(ms).toBeLessThanOrEqual(timerLimitMs);
    expect(ms).toBeGreaterThan(timerLimitMs - 1_000);
  });

  it("keeps a gRPC server stream's 30-hour deadline", async () => {
    const ms = await streamTimeout("grpc", { headers: { "grpc-timeout": "30H" } });
    expect(ms).toBeLessThanOrEqual(30 * 3_600_000);
    expect(ms).toBeGreaterThan(30 * 3_600_000 - 1_000);
  });

  // "99999999H" on a server stream must become a timeout Connect accepts.
  it('cuts a gRPC server stream\'s grpc-timeout "99999999H" to the timer limit', async () => {
    const ms = await streamTimeout("grpc", { headers: { "grpc-timeout": "99999999H" } });
    expect(ms).toBeLessThanOrEqual(timerLimitMs);
    expect(ms).toBeGreaterThan(timerLimitMs - 60_000);
  });

  it.each([
    ["grpc", { "grpc-timeout": "soon" }, "invalid grpc timeout value"],
    ["grpc", { "grpc-timeout": "123456789m" }, "invalid grpc timeout value"],
    ["connect-json", { "connect-timeout-ms": "soon" }, "invalid connect timeout value"],
    ["connect-json", { "connect-timeout-ms": "12345678901" }, "invalid connect timeout value"],
  ] as const)(
    "refuses a %s call with the unparseable timeout %j: INVALID_ARGUMENT",
    async (protocol, headers, message) => {
      const before = handled;
      const error = await callError(
        createTestClient(UserService, server.url, protocol).getUser({ id: "u1" }, { headers }),
      );
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toContain(message);
      expect(handled).toBe(before);
    },
  );
});

/** An outgoing unary request as a client transport hands it to its interceptors. */
function outgoingRequest(header: Record<string, string> = {}): UnaryRequest {
  const method = UserService.method.getUser;
  return {
    stream: false,
    service: UserService,
    method,
    requestMethod: "POST",
    url: "http://127.0.0.1:1/meridian.user.v1.UserService/GetUser",
    signal: new AbortController().signal,
    header: new Headers({ "content-type": "application/grpc+proto", ...header }),
    contextValues: createContextValues() as ContextValues,
    message: create(GetUserRequestSchema, { id: "u1" }),
  } as UnaryRequest;
}

/** A stand-in for the rest of the client: records what it was given. */
function recordingNext(wait?: (req: UnaryRequest) => Promise<void>) {
  const received: UnaryRequest[] = [];
  const next = async (req: UnaryRequest | never) => {
    received.push(req as UnaryRequest);
    await wait?.(req as UnaryRequest);
    return {
      stream: false,
      service: UserService,
      method: UserService.method.getUser,
      header: new Headers(),
      trailer: new Headers(),
      message: create(GetUserResponseSchema),
    } as UnaryResponse;
  };
  return { received, next: next as Parameters<ReturnType<typeof propagateDeadline>>[0] };
}

function sendWithin(
  call: HandlerContext | undefined,
  req: UnaryRequest,
  marginMs: number,
  wait?: (req: UnaryRequest) => Promise<void>,
) {
  const { received, next } = recordingNext(wait);
  const send = () => propagateDeadline(marginMs)(next)(req);
  const result = call === undefined ? send() : runInCall(call, send);
  return { received, result };
}

describe("propagateDeadline", () => {
  it("leaves a request made outside any call alone", async () => {
    const req = outgoingRequest();
    const { received, result } = sendWithin(undefined, req, 10);
    await result;
    expect(received).toHaveLength(1);
    expect(received[0]).toBe(req);
    expect(req.header.has("grpc-timeout")).toBe(false);
    expect(req.header.has("connect-timeout-ms")).toBe(false);
  });

  it("gives a gRPC request the caller's remaining time less the margin", async () => {
    const call = handlerContext({ timeoutMs: 2_000 });
    const { received, result } = sendWithin(call, outgoingRequest(), 300);
    await result;
    const ms = grpcTimeoutMs(received[0]?.header.get("grpc-timeout") ?? "");
    expect(ms).toBeLessThanOrEqual(1_700);
    expect(ms).toBeGreaterThan(1_450);
    expect(received[0]?.header.has("connect-timeout-ms")).toBe(false);
  });

  it("uses connect-timeout-ms for a Connect request", async () => {
    const call = handlerContext({ timeoutMs: 2_000 });
    const req = outgoingRequest({ "content-type": "application/json" });
    const { received, result } = sendWithin(call, req, 300);
    await result;
    const ms = Number(received[0]?.header.get("connect-timeout-ms"));
    expect(ms).toBeLessThanOrEqual(1_700);
    expect(ms).toBeGreaterThan(1_450);
    expect(received[0]?.header.has("grpc-timeout")).toBe(false);
  });

  it("keeps a shorter timeout of the request's own and replaces a longer one", async () => {
    const call = handlerContext({ timeoutMs: 1_000 });
    const shorter = sendWithin(call, outgoingRequest({ "grpc-timeout": "200m" }), 100);
    await shorter.result;
    expect(shorter.received[0]?.header.get("grpc-timeout")).toBe("200m");

    const longer = sendWithin(call, outgoingRequest({ "grpc-timeout": "5S" }), 100);
    await longer.result;
    expect(grpcTimeoutMs(longer.received[0]?.header.get("grpc-timeout") ?? "")).toBeLessThanOrEqual(
      900,
    );
  });

  it("does not make the call when the margin eats the remaining time", async () => {
    const call = handlerContext({ timeoutMs: 500 });
    const { received, result } = sendWithin(call, outgoingRequest(), 1_000);
    const error = await callError(result);
    expect(error.code).toBe(Code.DeadlineExceeded);
    expect(error.rawMessage).toMatch(
      /^no time left to call meridian\.user\.v1\.UserService\/GetUser: the caller's deadline is \d+ ms away$/,
    );
    expect(received).toEqual([]);
  });

  it("does not make the call when the caller has already gone", async () => {
    const caller = new AbortController();
    const call = handlerContext({ timeoutMs: 5_000, requestSignal: caller.signal });
    caller.abort(new ConnectError("client went away", Code.Canceled));
    const { received, result } = sendWithin(call, outgoingRequest(), 10);
    const error = await callError(result);
    expect(error.code).toBe(Code.Canceled);
    expect(received).toEqual([]);
  });

  it("links a call without a deadline to the caller's cancellation, adding no timeout", async () => {
    const caller = new AbortController();
    const call = handlerContext({ requestSignal: caller.signal });
    const entered = signal<AbortSignal>();
    const { received, result } = sendWithin(call, outgoingRequest(), 10, async (req) => {
      entered.resolve(req.signal);
      await aborted(req.signal);
    });
    const outgoing = await entered.promise;
    expect(outgoing.aborted).toBe(false);
    expect(received[0]?.header.has("grpc-timeout")).toBe(false);
    caller.abort(new ConnectError("client went away", Code.Canceled));
    expect(outgoing.aborted).toBe(true);
    await result;
  });

  it("aborts the outgoing call when the caller cancels", async () => {
    const caller = new AbortController();
    const call = handlerContext({ timeoutMs: 5_000, requestSignal: caller.signal });
    const entered = signal<AbortSignal>();
    const { result } = sendWithin(call, outgoingRequest(), 10, async (req) => {
      entered.resolve(req.signal);
      await aborted(req.signal);
    });
    const outgoing = await entered.promise;
    caller.abort(new ConnectError("client went away", Code.Canceled));
    expect(outgoing.aborted).toBe(true);
    await result;
  });

  it("aborts the outgoing call with DEADLINE_EXCEEDED when its budget runs out", async () => {
    const call = handlerContext({ timeoutMs: 250 });
    const entered = signal<AbortSignal>();
    const started = performance.now();
    const { result } = sendWithin(call, outgoingRequest(), 100, async (req) => {
      entered.resolve(req.signal);
      await aborted(req.signal);
    });
    const outgoing = await entered.promise;
    const reason = await within(aborted(outgoing), 2_000, "outgoing call aborted");
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(reason).toBeInstanceOf(ConnectError);
    expect((reason as ConnectError).code).toBe(Code.DeadlineExceeded);
    expect((reason as ConnectError).rawMessage).toBe(
      "meridian.user.v1.UserService/GetUser ran out of time",
    );
    await result;
  });
});

describe("deadline propagation from server A to neighbour B", () => {
  /** Larger than the slack allowed below, so that a margin taken twice shows. */
  const marginMs = 1_000;
  /** Time the call from A to B may take on a busy machine. */
  const slackMs = 800;
  let a: TestServer;
  let b: TestServer;
  let neighbour: Client<typeof UserService>;
  let greedyNeighbour: Client<typeof UserService>;

  /** What B saw of each call, and what it does with it. */
  let bCalls: { timeoutMs: number | undefined; signal: AbortSignal }[] = [];
  let onB: (context: HandlerContext) => Promise<void> = async () => {};
  /** A's remaining time just before it calls B. */
  let aRemaining: number | undefined;
  let onA: (context: HandlerContext) => Promise<GetUserResponse> = () => neighbour.getUser({});

  beforeAll(async () => {
    b = await startTestServer({
      name: "b",
      users: {
        async getUser(_req, context) {
          bCalls.push({ timeoutMs: context.timeoutMs(), signal: context.signal });
          await onB(context);
          return {};
        },
      },
    });
    neighbour = createClient(
      UserService,
      createNeighbourTransport({ baseUrl: b.url, identity: "caller", deadlineMarginMs: marginMs }),
    );
    greedyNeighbour = createClient(
      UserService,
      createNeighbourTransport({ baseUrl: b.url, identity: "caller", deadlineMarginMs: 10_000 }),
    );
    a = await startTestServer({
      name: "a",
      users: {
        getUser(_req, context) {
          aRemaining = context.timeoutMs();
          return onA(context);
        },
        async *watchUsers(_req, context) {
          aRemaining = context.timeoutMs();
          yield {};
          await neighbour.getUser({});
          yield {};
        },
      },
    });
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });
  beforeEach(() => {
    bCalls = [];
    aRemaining = undefined;
    onB = async () => {};
    onA = () => neighbour.getUser({});
  });

  describe.each(protocols)("when A's caller uses %s", (protocol) => {
    const clientOfA = () => createTestClient(UserService, a.url, protocol);

    it("B gets A's remaining time less the margin", async () => {
      await clientOfA().getUser({}, { timeoutMs: 5_000 });
      expect(aRemaining).toBeGreaterThan(4_000);
      expect(bCalls).toHaveLength(1);
      const bMs = bCalls[0]?.timeoutMs as number;
      const budget = (aRemaining as number) - marginMs;
      expect(bMs).toBeLessThanOrEqual(budget);
      expect(bMs).toBeGreaterThanOrEqual(budget - slackMs);
    });

    it("B gets A's default deadline less the margin when A's caller sent none", async () => {
      await clientOfA().getUser({});
      const bMs = bCalls[0]?.timeoutMs as number;
      expect(aRemaining).toBeLessThanOrEqual(testDeadlines.defaultMs);
      expect(bMs).toBeLessThanOrEqual((aRemaining as number) - marginMs);
      expect(bMs).toBeGreaterThanOrEqual((aRemaining as number) - marginMs - slackMs);
    });

    it("cancelling A's caller aborts B's handler", async () => {
      const bEntered = signal();
      onB = async (context) => {
        bEntered.resolve();
        await aborted(context.signal);
      };
      const caller = new AbortController();
      const call = callError(clientOfA().getUser({}, { signal: caller.signal, timeoutMs: 10_000 }));
      await within(bEntered.promise, 5_000, "B called");
      caller.abort();
      expect((await call).code).toBe(Code.Canceled);
      const bSignal = bCalls[0]?.signal as AbortSignal;
      await within(aborted(bSignal), 2_000, "B's signal aborted");
      expect(bSignal.aborted).toBe(true);
    });
  });

  it("does not call B when the margin is larger than A's remaining time", async () => {
    onA = () => greedyNeighbour.getUser({});
    const error = await callError(
      createTestClient(UserService, a.url, "grpc").getUser({}, { timeoutMs: 2_000 }),
    );
    expect(error.code).toBe(Code.DeadlineExceeded);
    expect(error.rawMessage).toMatch(
      /^no time left to call meridian\.user\.v1\.UserService\/GetUser: the caller's deadline is \d+ ms away$/,
    );
    expect(bCalls).toEqual([]);
  });

  it("surfaces B running out of time to A's caller as DEADLINE_EXCEEDED", async () => {
    onA = () => neighbour.getUser({}, { timeoutMs: 100 });
    onB = async (context) => {
      await aborted(context.signal);
      throw context.signal.reason;
    };
    const started = performance.now();
    const error = await callError(
      createTestClient(UserService, a.url, "grpc").getUser({}, { timeoutMs: 10_000 }),
    );
    expect(error.code).toBe(Code.DeadlineExceeded);
    // B's 100 ms ran out, not A's 10 s.
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(bCalls[0]?.timeoutMs).toBeLessThanOrEqual(100);
  });

  it("gives B a server stream's remaining time when the stream's handler calls it", async () => {
    const messages = await drain(
      createTestClient(UserService, a.url, "grpc").watchUsers({}, { timeoutMs: 5_000 }),
    );
    expect(messages).toHaveLength(2);
    const bMs = bCalls[0]?.timeoutMs as number;
    expect(bMs).toBeLessThanOrEqual((aRemaining as number) - marginMs);
    expect(bMs).toBeGreaterThanOrEqual((aRemaining as number) - marginMs - slackMs);
  });

  it("leaves a call made outside any call alone: B applies its own default", async () => {
    await neighbour.getUser({});
    const bMs = bCalls[0]?.timeoutMs as number;
    expect(bMs).toBeLessThanOrEqual(testDeadlines.defaultMs);
    expect(bMs).toBeGreaterThan(testDeadlines.defaultMs - 1_000);
  });

  // A budget over 99,999,999 ms (~27.8 h, only possible inside server
  // streams) no longer fits grpc-timeout's 8 digits in milliseconds; it is
  // sent in seconds, and B (a unary method) then caps it at its maximum.
  it("gives B the remaining time of a server stream with a 30-hour deadline", async () => {
    const messages = await drain(
      createTestClient(UserService, a.url, "grpc").watchUsers(
        {},
        { headers: { "grpc-timeout": "30H" } },
      ),
    );
    expect(messages).toHaveLength(2);
    expect(aRemaining).toBeGreaterThan(100_000_000);
    const bMs = bCalls[0]?.timeoutMs as number;
    expect(bMs).toBeLessThanOrEqual(testDeadlines.maxMs);
    expect(bMs).toBeGreaterThanOrEqual(testDeadlines.maxMs - slackMs);
  });
});

describe("formatGrpcTimeout", () => {
  it("fits gRPC's 8 digits, never granting more time than given", () => {
    expect(formatGrpcTimeout(1_500.9)).toBe("1500m");
    expect(formatGrpcTimeout(99_999_999)).toBe("99999999m");
    expect(formatGrpcTimeout(100_000_000)).toBe("100000S");
    expect(formatGrpcTimeout(2_147_483_647)).toBe("2147483S");
    expect(formatGrpcTimeout(1e12)).toBe("277777H");
  });
});
