/**
 * End to end: the three built services as separate processes on ephemeral
 * ports, each with its own database, talking gRPC to each other exactly as
 * in production. Every behaviour the system promises is exercised here
 * across real process and network boundaries.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Code } from "@connectrpc/connect";
import { generateSigningJwk, importSigningKey, TokenSigner } from "@meridian/platform";
import {
  OrderEventType,
  OrderService,
  OrderStatus,
  type WatchOrdersResponse,
} from "@meridian/proto/meridian/order/v1/order_pb";
import { PaymentService, PaymentStatus } from "@meridian/proto/meridian/payment/v1/payment_pb";
import { UserService } from "@meridian/proto/meridian/user/v1/user_pb";
import {
  callError,
  createTestClient,
  type TestDatabase,
  testDatabaseKinds,
} from "@meridian/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runScenario } from "../src/scenario.js";
import {
  freePort,
  type RunningSystem,
  type ServiceName,
  serviceNames,
  startSystem,
} from "../src/system.js";

const databaseKinds = await testDatabaseKinds();
const admin = { email: "admin@e2e.example", password: "e2e admin password" };

describe.each(databaseKinds)("the system on $name", (kind) => {
  let system: RunningSystem;
  let dataDir: string;
  const databases: TestDatabase[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "meridian-e2e-"));
    const ports = {} as Record<ServiceName, number>;
    const env = {} as Record<ServiceName, Record<string, string>>;
    for (const name of serviceNames) {
      ports[name] = await freePort();
      const db = await kind.create();
      databases.push(db);
      env[name] = { ...db.env, WATCH_HEARTBEAT_MS: "500", SHUTDOWN_GRACE_MS: "3000" };
    }
    env["payment-service"] = { ...env["payment-service"], PROCESSOR_SLOW_MS: "3000" };
    system = await startSystem({ dataDir, logDir: path.join(dataDir, "logs"), ports, admin, env });
  });
  afterAll(async () => {
    await system?.stop();
    for (const db of databases) await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const anonymous = () => createTestClient(UserService, system.urls["user-service"]);
  const as = (token: string) => ({
    users: createTestClient(UserService, system.urls["user-service"], "grpc", token),
    orders: createTestClient(OrderService, system.urls["order-service"], "grpc", token),
    payments: createTestClient(PaymentService, system.urls["payment-service"], "grpc", token),
  });
  const signUp = async (label: string) => {
    const email = `${label}-${crypto.randomUUID()}@example.com`;
    const password = "a long enough password";
    const { user } = await anonymous().createUser({ email, name: label, password });
    const { accessToken } = await anonymous().authenticate({ email, password });
    return { id: user?.id ?? "", token: accessToken, ...as(accessToken) };
  };
  const order = (userId: string, paymentToken = "tok_visa") => ({
    userId,
    items: [{ sku: "MUG-001", quantity: 1 }],
    idempotencyKey: crypto.randomUUID(),
    paymentToken,
  });
  const adminToken = async () =>
    (await anonymous().authenticate({ email: admin.email, password: admin.password })).accessToken;

  it("runs the demo scenario", async () => {
    const lines: string[] = [];
    await runScenario({ urls: system.urls, print: (line) => lines.push(line) });
    expect(lines.join("\n")).toContain("The watch feed delivered all 8 events");
  });

  it("bounds the whole call tree by the caller's deadline", async () => {
    // payment-service logs each Charge with its duration. A slow Charge that
    // ended before the caller's 800 ms was handed less time: its own deadline
    // fired (DEADLINE_EXCEEDED) or order-service's timer for it did first
    // (CANCELLED), whichever won the race.
    const timedOutCharges = async () =>
      (await readFile(system.logFile("payment-service"), "utf8"))
        .split("\n")
        // A line still being written is not JSON yet.
        .filter((line) => line.endsWith("}"))
        .filter(
          (line) =>
            line.includes("PaymentService/Charge") &&
            (line.includes('"DEADLINE_EXCEEDED"') || line.includes('"CANCELLED"')),
        )
        .map((line) => JSON.parse(line).ms as number);
    const before = (await timedOutCharges()).length;

    const ada = await signUp("deadline");
    const started = performance.now();
    const error = await callError(
      ada.orders.createOrder(order(ada.id, "tok_slow"), { timeoutMs: 800 }),
    );
    expect(error.code).toBe(Code.DeadlineExceeded);
    expect(performance.now() - started).toBeLessThan(1500);

    await expect
      .poll(async () => (await timedOutCharges()).length, { timeout: 5000 })
      .toBe(before + 1);
    expect((await timedOutCharges()).at(-1)).toBeLessThan(800);
  });

  it("authenticates with user-service's tokens everywhere and authorizes per user", async () => {
    const ada = await signUp("ada");
    const bob = await signUp("bob");
    const { order: bobs } = await bob.orders.createOrder(order(bob.id));

    // payment-service verifies user-service's token by fetching its JWKS.
    const { payments } = await bob.payments.listPayments({});
    expect(payments.map((p) => p.orderId)).toEqual([bobs?.id]);

    expect((await callError(ada.orders.getOrder({ id: bobs?.id ?? "" }))).code).toBe(
      Code.PermissionDenied,
    );
    expect((await callError(ada.payments.getPayment({ id: bobs?.paymentId ?? "" }))).code).toBe(
      Code.PermissionDenied,
    );
    expect((await callError(ada.users.listUsers({}))).code).toBe(Code.PermissionDenied);
    const charge = await callError(
      ada.payments.charge({
        orderId: bobs?.id ?? "",
        userId: ada.id,
        amount: bobs?.total,
        paymentToken: "tok_visa",
        idempotencyKey: "stolen",
      }),
    );
    expect(charge.code).toBe(Code.PermissionDenied);

    const forger = new TokenSigner(
      "user-service",
      await importSigningKey(JSON.stringify(await generateSigningJwk())),
    );
    const forged = (await forger.sign({ subject: ada.id, roles: ["admin"], ttlSeconds: 60 })).token;
    const forgedClients = as(forged);
    for (const call of [
      () => forgedClients.orders.listOrders({}),
      () => forgedClients.payments.listPayments({}),
      () => forgedClients.users.listUsers({}),
    ]) {
      expect((await callError(call())).code).toBe(Code.Unauthenticated);
    }
    const noToken = await callError(
      createTestClient(OrderService, system.urls["order-service"]).createOrder(order(ada.id)),
    );
    expect(noToken.code).toBe(Code.Unauthenticated);

    const root = as(await adminToken());
    expect((await root.orders.getOrder({ id: bobs?.id ?? "" })).order?.userId).toBe(bob.id);
  });

  it("never charges twice, however CreateOrder is retried", async () => {
    const ada = await signUp("retry");
    const request = order(ada.id);
    const results = await Promise.all([1, 2, 3, 4].map(() => ada.orders.createOrder(request)));
    const ids = new Set(results.map((r) => r.order?.id));
    expect(ids.size).toBe(1);
    const again = await ada.orders.createOrder(request);
    expect(ids.has(again.order?.id)).toBe(true);
    const { payments } = await ada.payments.listPayments({ orderId: again.order?.id ?? "" });
    expect(payments).toHaveLength(1);
    expect(payments[0]?.status).toBe(PaymentStatus.SUCCEEDED);
  });

  it("serves every RPC kind over gRPC across processes: bidi QuoteCart, client-streaming ImportUsers", async () => {
    const ada = await signUp("kinds");
    async function* changes() {
      yield { change: { case: "setItem" as const, value: { sku: "BOOK-005", quantity: 2 } } };
      yield { change: { case: "setItem" as const, value: { sku: "MUG-001", quantity: 1 } } };
    }
    const totals: bigint[] = [];
    for await (const quote of ada.orders.quoteCart(changes()))
      totals.push(quote.total?.minorUnits ?? -1n);
    expect(totals).toEqual([84_00n, 96_00n]);

    const root = as(await adminToken());
    async function* rows() {
      yield {
        email: `import-a-${crypto.randomUUID()}@example.com`,
        name: "A",
        password: "imported password",
      };
      yield { email: "not an email", name: "B" };
    }
    const summary = await root.users.importUsers(rows());
    expect([summary.createdCount, summary.failedCount]).toEqual([1, 1]);
  });

  it("keeps one HTTP/2 connection from order-service to payment-service for all its calls", async () => {
    const ada = await signUp("connection");
    for (let i = 0; i < 5; i++) await ada.orders.createOrder(order(ada.id));
    const peers = (await readFile(system.logFile("payment-service"), "utf8"))
      .split("\n")
      // A line still being written is not JSON yet.
      .filter((line) => line.endsWith("}"))
      .filter((line) => line.includes("PaymentService/Charge") && line.includes('"OK"'))
      .slice(-5)
      .map((line) => JSON.parse(line).peer as string);
    expect(peers).toHaveLength(5);
    expect(new Set(peers).size).toBe(1);
  });

  it("records PAYMENT_UNCONFIRMED while payment-service is down, and settles on retry", async () => {
    const ada = await signUp("outage");
    expect(await system.stopService("payment-service")).toBe(0);
    const request = order(ada.id);
    try {
      const { order: unconfirmed } = await ada.orders.createOrder(request);
      expect(unconfirmed?.status).toBe(OrderStatus.PAYMENT_UNCONFIRMED);
    } finally {
      await system.startService("payment-service");
    }
    const { order: settled } = await ada.orders.createOrder(request);
    expect(settled?.status).toBe(OrderStatus.PAID);
    const { payments } = await ada.payments.listPayments({ orderId: settled?.id ?? "" });
    expect(payments).toHaveLength(1);
  });

  it("streams a customer's own order events in order, resumes without gap or duplicate, and survives a restart", async () => {
    const ada = await signUp("watcher");
    const bob = await signUp("other");
    const events: WatchOrdersResponse[] = [];
    const watch = ada.orders.watchOrders({})[Symbol.asyncIterator]();
    const first = await watch.next(); // the opening heartbeat
    expect(first.value?.kind.case).toBe("heartbeat");

    const { order: mine } = await ada.orders.createOrder(order(ada.id));
    await bob.orders.createOrder(order(bob.id));
    const next = async () => {
      for (;;) {
        const { value, done } = await watch.next();
        if (done) return undefined;
        if (value.kind.case === "event") return value;
      }
    };
    for (let i = 0; i < 2; i++) {
      const event = await next();
      if (event) events.push(event);
    }
    const kinds = events.map((e) =>
      e.kind.case === "event" ? [OrderEventType[e.kind.value.type], e.kind.value.order?.id] : [],
    );
    expect(kinds).toEqual([
      ["CREATED", mine?.id],
      ["STATUS_CHANGED", mine?.id],
    ]);

    // Shut order-service down under the open stream: it ends cleanly.
    expect(await system.stopService("order-service")).toBe(0);
    await expect(next()).resolves.toBeUndefined();

    // Changes made while the watcher was away are all there on resume.
    await system.startService("order-service");
    const last = events.at(-1)?.kind;
    const lastCursor = last?.case === "event" ? last.value.cursor : "";
    await ada.orders.cancelOrder({ id: mine?.id ?? "" });
    const resumed = ada.orders.watchOrders({ resumeCursor: lastCursor })[Symbol.asyncIterator]();
    let cancelled: string | undefined;
    for (;;) {
      const { value } = await resumed.next();
      if (value?.kind.case === "event") {
        cancelled = `${OrderStatus[value.kind.value.order?.status ?? 0]} ${value.kind.value.order?.id}`;
        break;
      }
    }
    await resumed.return?.();
    expect(cancelled).toBe(`CANCELLED ${mine?.id}`);
  });
});
