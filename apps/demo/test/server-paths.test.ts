/**
 * Every unary RPC of the three services, on both server paths: the system
 * runs twice on the same PostgreSQL databases, once as configured by default
 * (unary gRPC on the direct path) and once with SERVER_PATH=stock (Connect's
 * adapter for every call), like two replicas of each service. A corpus of
 * raw calls per RPC (valid requests, and everything a client can get wrong:
 * tokens, deadlines, sizes, frames, compression, encodings) goes to both,
 * and the answers must be identical: status, headers but `date`, payload,
 * trailers, resets. Mutations in the corpus are idempotent replays of
 * fixtures made first, so both replicas answer from the same rows.
 *
 * The streaming RPCs (WatchUsers, ImportUsers, WatchOrders, QuoteCart,
 * WatchPayments) are Connect's on both paths; the platform's own test
 * (libs/platform/test/grpc-fast-path.test.ts) covers the direct path's
 * handling of handler headers, trailers, error details and timeouts.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { OrderService } from "@meridian/proto/meridian/order/v1/order_pb";
import { PaymentService } from "@meridian/proto/meridian/payment/v1/payment_pb";
import { UserService } from "@meridian/proto/meridian/user/v1/user_pb";
import {
  callCorpus,
  createTestClient,
  type RawAnswer,
  rawGrpcClient,
  type TestDatabase,
  testDatabaseKinds,
} from "@meridian/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  freePort,
  type RunningSystem,
  type ServiceName,
  serviceNames,
  startSystem,
} from "../src/system.js";

const postgres = (await testDatabaseKinds()).find((kind) => kind.name === "postgres");
const admin = { email: "admin@paths.example", password: "server paths admin" };
const readMaxBytes = 4 * 1024 * 1024;

describe.skipIf(postgres === undefined)("both server paths answer every RPC alike", () => {
  const systems = {} as Record<"fast" | "stock", RunningSystem>;
  const databases: TestDatabase[] = [];
  let dataDir: string;
  let token: string;
  const fixtures = { userId: "", orderId: "", cancelledId: "", paymentId: "", orderKey: "" };

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "meridian-paths-"));
    const databaseUrls = {} as Record<ServiceName, string>;
    for (const name of serviceNames) {
      const db = await (postgres as NonNullable<typeof postgres>).create();
      databases.push(db);
      databaseUrls[name] = db.env.DATABASE_URL as string;
    }
    for (const serverPath of ["fast", "stock"] as const) {
      const ports = {} as Record<ServiceName, number>;
      const env = {} as Record<ServiceName, Record<string, string>>;
      for (const name of serviceNames) {
        ports[name] = await freePort();
        env[name] = { SERVER_PATH: serverPath };
      }
      // One dataDir: both systems sign with the same keys, as replicas do.
      systems[serverPath] = await startSystem({
        dataDir,
        logDir: path.join(dataDir, `logs-${serverPath}`),
        ports,
        admin,
        databaseUrls,
        env,
      });
    }

    // Fixtures, made once through the default system.
    const urls = systems.fast.urls;
    const users = createTestClient(UserService, urls["user-service"]);
    token = (await users.authenticate(admin)).accessToken;
    const as = <S extends DescService>(service: S, name: ServiceName) =>
      createTestClient(service, urls[name], "grpc", token);
    const me = await as(UserService, "user-service").listUsers({ pageSize: 1 });
    fixtures.userId = me.users[0]?.id ?? "";
    fixtures.orderKey = crypto.randomUUID();
    const orders = as(OrderService, "order-service");
    const placed = await orders.createOrder({
      userId: fixtures.userId,
      items: [{ sku: "MUG-001", quantity: 2 }],
      idempotencyKey: fixtures.orderKey,
      paymentToken: "tok_visa",
    });
    fixtures.orderId = placed.order?.id ?? "";
    fixtures.paymentId = placed.order?.paymentId ?? "";
    const toCancel = await orders.createOrder({
      userId: fixtures.userId,
      items: [{ sku: "MUG-001", quantity: 1 }],
      idempotencyKey: crypto.randomUUID(),
      paymentToken: "tok_visa",
    });
    fixtures.cancelledId = toCancel.order?.id ?? "";
    await orders.cancelOrder({ id: fixtures.cancelledId, reason: "fixture" });
  }, 240_000);

  afterAll(async () => {
    await Promise.all(Object.values(systems).map((system) => system.stop()));
    for (const db of databases) await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  const compareAll = async (
    service: DescService,
    name: ServiceName,
    samples: Record<string, readonly object[]>,
  ) => {
    const corpus = callCorpus(service, { token, readMaxBytes, samples });
    const fast = rawGrpcClient(systems.fast.urls[name]);
    const stock = rawGrpcClient(systems.stock.urls[name]);
    const differences: string[] = [];
    let answered = 0;
    try {
      for (const call of corpus) {
        const [a, b] = await Promise.all([fast.call(call), stock.call(call)]);
        if (a.trailers["grpc-status"] === "0") answered++;
        if (show(a) !== show(b)) {
          differences.push(`${call.name}\n  fast:  ${show(a)}\n  stock: ${show(b)}`);
        }
      }
    } finally {
      await Promise.all([fast.close(), stock.close()]);
    }
    expect(differences).toEqual([]);
    // Each valid sample is sent five ways; all of them must have succeeded.
    expect(answered).toBeGreaterThanOrEqual(minimumAnswered[name]);
    // And each system served on the path it was given.
    for (const [serverPath, system] of Object.entries(systems)) {
      const log = await readFile(system.logFile(name), "utf8");
      expect(log).toContain(`"serverPath":"${serverPath}"`);
    }
    return corpus.length;
  };
  const minimumAnswered: Record<ServiceName, number> = {
    // GetUser of the admin, ListUsers of one, the empty ListUsers.
    "user-service": 15,
    // The CreateOrder replay, GetOrder, ListOrders, the empty ListOrders, the repeated cancel.
    "order-service": 25,
    // GetPayment, ListPayments twice, the empty ListPayments.
    "payment-service": 20,
  };

  it("user-service", async () => {
    const sent = await compareAll(UserService, "user-service", {
      CreateUser: [{ email: "not an email", name: "X", password: "long enough password" }],
      Authenticate: [{ email: admin.email, password: "wrong password" }],
      GetUser: [{ id: fixtures.userId }, { id: crypto.randomUUID() }, { id: "not-a-uuid" }],
      ListUsers: [{ pageSize: 1 }, { pageSize: -1 }, { pageToken: "garbage" }],
      UpdateUser: [
        { user: { id: crypto.randomUUID(), name: "N" }, updateMask: { paths: ["name"] } },
      ],
      DeleteUser: [{ id: crypto.randomUUID() }],
    });
    expect(sent).toBeGreaterThan(100);
  }, 120_000);

  it("order-service", async () => {
    await compareAll(OrderService, "order-service", {
      CreateOrder: [
        {
          userId: fixtures.userId,
          items: [{ sku: "MUG-001", quantity: 2 }],
          idempotencyKey: fixtures.orderKey,
          paymentToken: "tok_visa",
        },
        { userId: fixtures.userId, items: [{ sku: "NOPE", quantity: 1 }], idempotencyKey: "k" },
      ],
      GetOrder: [{ id: fixtures.orderId }, { id: crypto.randomUUID() }],
      ListOrders: [{ userId: fixtures.userId, pageSize: 5 }],
      CancelOrder: [{ id: fixtures.cancelledId, reason: "fixture" }, { id: crypto.randomUUID() }],
    });
  }, 120_000);

  it("payment-service", async () => {
    await compareAll(PaymentService, "payment-service", {
      Charge: [
        { orderId: fixtures.orderId, userId: fixtures.userId, idempotencyKey: "" },
        // The key order-service charged with: a replay, or a mismatch, the same on both.
        {
          orderId: fixtures.orderId,
          userId: fixtures.userId,
          amount: { currencyCode: "EUR", minorUnits: 1n },
          paymentToken: "tok_visa",
          idempotencyKey: `order/${fixtures.orderId}/charge`,
        },
      ],
      Refund: [{ paymentId: crypto.randomUUID(), idempotencyKey: "refund-1" }],
      GetPayment: [{ id: fixtures.paymentId }, { id: crypto.randomUUID() }],
      ListPayments: [{ orderId: fixtures.orderId }, { pageSize: 1000 }],
    });
  }, 120_000);
});

function show(answer: RawAnswer): string {
  return JSON.stringify({
    status: answer.status,
    headers: answer.headers,
    trailers: answer.trailers,
    body: answer.body.toString("base64"),
    rst: answer.rstCode,
  });
}
