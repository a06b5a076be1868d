/**
 * toConnectError for auth errors and for errors that came over the wire
 * from a neighbour: only "time ran out", "cancelled" and "unavailable" mean
 * the same to our own caller; anything else a neighbour said is ours to
 * handle, and escaping a handler makes it INTERNAL.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import {
  type Client,
  Code,
  ConnectError,
  createClient,
  createRouterTransport,
} from "@connectrpc/connect";
import { ResourceInfoSchema } from "@meridian/proto/google/rpc/error_details_pb";
import { UserService } from "@meridian/proto/meridian/user/v1/user_pb";
import { type CapturedLogs, callError, captureLogs, createTestClient } from "@meridian/testkit";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  NotFoundError,
  PermissionDeniedError,
  toConnectError,
  UnauthenticatedError,
} from "../src/errors.js";
import { createNeighbourTransport } from "../src/neighbours.js";
import { startTestServer, type TestServer } from "./support.js";

function recorder() {
  const seen: unknown[] = [];
  return { seen, onInternal: (error: unknown) => void seen.push(error) };
}

/** The error a client gets from an in-memory server that throws `thrown`: a wire error. */
async function wireError(thrown: unknown): Promise<ConnectError> {
  const client = createClient(
    UserService,
    createRouterTransport((router) =>
      router.service(UserService, {
        getUser() {
          throw thrown;
        },
      }),
    ),
  );
  return callError(client.getUser({}));
}

const relayed = [Code.DeadlineExceeded, Code.Canceled, Code.Unavailable];
const hidden = [
  Code.Unknown,
  Code.InvalidArgument,
  Code.NotFound,
  Code.AlreadyExists,
  Code.PermissionDenied,
  Code.ResourceExhausted,
  Code.FailedPrecondition,
  Code.Aborted,
  Code.OutOfRange,
  Code.Unimplemented,
  Code.Internal,
  Code.DataLoss,
  Code.Unauthenticated,
];

describe("toConnectError", () => {
  it("maps UnauthenticatedError to UNAUTHENTICATED with its message", () => {
    const { seen, onInternal } = recorder();
    const error = toConnectError(new UnauthenticatedError("the token has expired"), onInternal);
    expect(error.code).toBe(Code.Unauthenticated);
    expect(error.rawMessage).toBe("the token has expired");
    expect(seen).toEqual([]);
  });

  it("maps PermissionDeniedError to PERMISSION_DENIED with its message", () => {
    const { seen, onInternal } = recorder();
    const error = toConnectError(new PermissionDeniedError("user u2 may not read u1"), onInternal);
    expect(error.code).toBe(Code.PermissionDenied);
    expect(error.rawMessage).toBe("user u2 may not read u1");
    expect(seen).toEqual([]);
  });

  it.each(relayed.map((code) => [Code[code], code] as const))(
    "relays a neighbour's %s with its message only",
    async (_name, code) => {
      const fromNeighbour = await wireError(
        new ConnectError("neighbour says so", code, { "x-secret": "1" }, [
          { desc: ResourceInfoSchema, value: { resourceName: "internal/thing" } },
        ]),
      );
      expect(fromNeighbour.isWireError).toBe(true);
      const { seen, onInternal } = recorder();
      const error = toConnectError(fromNeighbour, onInternal);
      expect(error.code).toBe(code);
      expect(error.rawMessage).toBe("neighbour says so");
      expect(error.isWireError).toBe(false);
      expect(error.details).toEqual([]);
      expect(error.metadata.has("x-secret")).toBe(false);
      expect(seen).toEqual([]);
    },
  );

  it.each(hidden.map((code) => [Code[code], code] as const))(
    "turns a neighbour's %s into a bare INTERNAL and reports the original",
    async (_name, code) => {
      const fromNeighbour = await wireError(new ConnectError("users/42 is secret", code));
      expect(fromNeighbour.isWireError).toBe(true);
      const { seen, onInternal } = recorder();
      const error = toConnectError(fromNeighbour, onInternal);
      expect(error.code).toBe(Code.Internal);
      expect(error.rawMessage).toBe("internal error");
      expect(error.details).toEqual([]);
      expect(seen).toEqual([fromNeighbour]);
    },
  );

  it("passes the service's own ConnectErrors through, whatever their code", () => {
    for (const code of [...relayed, ...hidden]) {
      const own = new ConnectError("ours", code);
      const { seen, onInternal } = recorder();
      expect(toConnectError(own, onInternal)).toBe(own);
      expect(seen).toEqual([]);
    }
  });
});

describe("errors of neighbour B as A's caller sees them", () => {
  let a: TestServer;
  let b: TestServer;
  let logs: CapturedLogs;
  let neighbour: Client<typeof UserService>;
  let unreachable: Client<typeof UserService>;
  let thrownByB: unknown;

  beforeAll(async () => {
    logs = captureLogs();
    b = await startTestServer({
      name: "b",
      users: {
        getUser() {
          throw thrownByB;
        },
      },
    });
    neighbour = createClient(
      UserService,
      createNeighbourTransport({ baseUrl: b.url, identity: "caller", deadlineMarginMs: 10 }),
    );
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const closedUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    unreachable = createClient(
      UserService,
      createNeighbourTransport({ baseUrl: closedUrl, identity: "caller", deadlineMarginMs: 10 }),
    );
    a = await startTestServer({
      name: "a",
      logger: logs.logger,
      users: {
        getUser: (req) => (req.id === "unreachable" ? unreachable : neighbour).getUser({}),
      },
    });
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });
  beforeEach(() => {
    logs.records.length = 0;
  });
  const callA = (id = "") =>
    callError(createTestClient(UserService, a.url, "grpc").getUser({ id }));

  it.each([
    ["DEADLINE_EXCEEDED", new ConnectError("B's database timed out", Code.DeadlineExceeded)],
    ["CANCELLED", new ConnectError("B was cancelled", Code.Canceled)],
    ["UNAVAILABLE", new ConnectError("B's database is down", Code.Unavailable)],
  ])("relays B's %s with B's message", async (_name, thrown) => {
    thrownByB = thrown;
    const error = await callA();
    expect(error.code).toBe(thrown.code);
    expect(error.rawMessage).toBe(thrown.rawMessage);
    expect(logs.records.filter((r) => r.msg === "unexpected error")).toEqual([]);
  });

  it.each([
    ["NOT_FOUND", new NotFoundError("meridian.user.v1.User", "users/42")],
    ["PERMISSION_DENIED", new PermissionDeniedError("service a may not read users")],
    ["UNAUTHENTICATED", new UnauthenticatedError("no token")],
    ["INVALID_ARGUMENT", new ConnectError("bad page token", Code.InvalidArgument)],
    ["INTERNAL", new Error("B crashed")],
  ])("hides B's %s from A's caller: INTERNAL, logged by A", async (_name, thrown) => {
    thrownByB = thrown;
    const error = await callA();
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toBe("internal error");
    expect(error.findDetails(ResourceInfoSchema)).toEqual([]);
    const logged = logs.records.filter((r) => r.msg === "unexpected error");
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({
      level: 50,
      service: "meridian.user.v1.UserService",
      procedure: "GetUser",
      err: { isWireError: true },
    });
  });

  it("answers UNAVAILABLE when B cannot be reached", async () => {
    const error = await callA("unreachable");
    expect(error.code).toBe(Code.Unavailable);
    const rpc = logs.records.filter((r) => r.msg === "rpc");
    expect(rpc).toHaveLength(1);
    expect(rpc[0]).toMatchObject({ level: 40, code: "UNAVAILABLE" });
  });
});
