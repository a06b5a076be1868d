/**
 * The demo's story, told against a running system over the gRPC protocol:
 * each step says what it does, makes real calls, and shows what came back.
 * It checks every outcome it narrates, so a broken system fails the demo
 * (and the end-to-end test that runs it) instead of telling a wrong story.
 */
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { statusName } from "@meridian/platform";
import type { Money } from "@meridian/proto/meridian/common/v1/common_pb";
import {
  type Order,
  OrderEventType,
  OrderService,
  OrderStatus,
} from "@meridian/proto/meridian/order/v1/order_pb";
import { PaymentService, PaymentStatus } from "@meridian/proto/meridian/payment/v1/payment_pb";
import { UserService } from "@meridian/proto/meridian/user/v1/user_pb";
import type { ServiceName } from "./system.js";

export interface ScenarioOptions {
  urls: Record<ServiceName, string>;
  /** Where the story is told (stdout in the demo). */
  print: (line: string) => void;
}

export interface ScenarioResult {
  email: string;
  password: string;
  token: string;
  userId: string;
}

const style = (code: string) => (text: string) =>
  process.stdout.isTTY ? `\x1b[${code}m${text}\x1b[0m` : text;
const bold = style("1");
const dim = style("2");
const green = style("32");
const yellow = style("33");
const cyan = style("36");

/** One transport per service for the whole scenario, as a real client would keep. */
function clients(urls: Record<ServiceName, string>, token?: string) {
  const interceptors: Interceptor[] = token
    ? [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${token}`);
          return next(req);
        },
      ]
    : [];
  const transport = (url: string) => createGrpcTransport({ baseUrl: url, interceptors });
  return {
    users: createClient(UserService, transport(urls["user-service"])),
    orders: createClient(OrderService, transport(urls["order-service"])),
    payments: createClient(PaymentService, transport(urls["payment-service"])),
  };
}

function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`demo expectation failed: ${what}`);
}

const money = (amount: Money | undefined) =>
  amount ? `${(Number(amount.minorUnits) / 100).toFixed(2)} ${amount.currencyCode}` : "?";
const codeName = (error: ConnectError) => statusName(error.code);
const status = (order: Order | undefined) => OrderStatus[order?.status ?? 0] ?? "?";

export async function runScenario({ urls, print }: ScenarioOptions): Promise<ScenarioResult> {
  let stepNumber = 0;
  const step = (title: string, explanation: string) => {
    print("");
    print(bold(`${++stepNumber}. ${title}`));
    print(dim(`   ${explanation}`));
  };
  const show = (line: string) => print(`   ${line}`);

  const anonymous = clients(urls);
  const email = `ada+${Date.now().toString(36)}@example.com`;
  const password = "correct horse battery staple";

  step(
    "Sign up and authenticate",
    "CreateUser and Authenticate need no token. user-service stores a scrypt hash and signs a JWT (EdDSA) that every service verifies against its JWKS.",
  );
  const { user } = await anonymous.users.createUser({ email, name: "Ada Lovelace", password });
  check(user !== undefined, "CreateUser returned a user");
  show(`${green("✓")} created user ${user.id} (${email})`);
  const { accessToken } = await anonymous.users.authenticate({ email, password });
  show(
    `${green("✓")} access token ${accessToken.slice(0, 24)}… (${urls["user-service"]}/.well-known/jwks.json has the key)`,
  );
  const refused = await anonymous.orders.listOrders({}).catch((e: unknown) => ConnectError.from(e));
  check(
    refused instanceof ConnectError && refused.code === Code.Unauthenticated,
    "no token → UNAUTHENTICATED",
  );
  show(
    `${green("✓")} without the token, order-service says ${yellow(codeName(refused))}: ${refused.rawMessage}`,
  );
  const ada = clients(urls, accessToken);

  step(
    "Open a watch feed",
    "WatchOrders streams Ada's order events as they commit (server streaming, resumable by cursor); they appear below marked ⟵ as they arrive.",
  );
  const watching = new AbortController();
  const seen: string[] = [];
  const feed = (async () => {
    try {
      for await (const res of ada.orders.watchOrders({}, { signal: watching.signal })) {
        if (res.kind.case !== "event") continue;
        const { type, order, cursor } = res.kind.value;
        const line = `${OrderEventType[type]} ${order?.id.slice(0, 8)} → ${status(order)}`;
        seen.push(line);
        print(cyan(`   ⟵ watch [cursor ${cursor}] ${line}`));
      }
    } catch (error) {
      if (!watching.signal.aborted) throw error;
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 200));

  const cart = [
    { sku: "MUG-001", quantity: 2 },
    { sku: "BOOK-005", quantity: 1 },
  ];

  step(
    "Place an order that pays",
    "order-service checks Ada with user-service (forwarding her token), records the order PENDING, then charges through payment-service as itself.",
  );
  const paidKey = crypto.randomUUID();
  const { order: paid } = await ada.orders.createOrder({
    userId: user.id,
    items: cart,
    idempotencyKey: paidKey,
    paymentToken: "tok_visa",
  });
  check(paid?.status === OrderStatus.PAID, "the first order is PAID");
  show(
    `${green("✓")} order ${paid.id} for ${money(paid.total)}: ${green(status(paid))} (payment ${paid.paymentId})`,
  );

  step(
    "Place an order whose payment is declined",
    'Payment token "tok_declined" makes the simulated processor decline. A decline is an outcome, not an error.',
  );
  const { order: declined } = await ada.orders.createOrder({
    userId: user.id,
    items: [{ sku: "TEE-002", quantity: 1 }],
    idempotencyKey: crypto.randomUUID(),
    paymentToken: "tok_declined",
  });
  check(declined?.status === OrderStatus.PAYMENT_FAILED, "the declined order is PAYMENT_FAILED");
  show(
    `${green("✓")} order ${declined.id}: ${yellow(status(declined))} — ${declined.statusReason}`,
  );

  step(
    "Place an order that hits its deadline",
    'Token "tok_slow" takes the processor 3 s; Ada allows 1.5 s. order-service hands payment-service the time left (less a margin), and the deadline is the same everywhere.',
  );
  const slowKey = crypto.randomUUID();
  const slowRequest = {
    userId: user.id,
    items: [{ sku: "HOOD-003", quantity: 1 }],
    idempotencyKey: slowKey,
    paymentToken: "tok_slow",
  };
  const started = performance.now();
  const timedOut = await ada.orders
    .createOrder(slowRequest, { timeoutMs: 1500 })
    .catch((e: unknown) => ConnectError.from(e));
  const took = Math.round(performance.now() - started);
  check(
    timedOut instanceof ConnectError && timedOut.code === Code.DeadlineExceeded,
    "the slow order fails with DEADLINE_EXCEEDED",
  );
  show(`${green("✓")} ${yellow(codeName(timedOut))} after ${took} ms: ${timedOut.rawMessage}`);
  // The caller has gone; order-service records the outcome just after.
  let unconfirmed: Order | undefined;
  for (
    let attempt = 0;
    attempt < 100 && unconfirmed?.status !== OrderStatus.PAYMENT_UNCONFIRMED;
    attempt++
  ) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const { orders } = await ada.orders.listOrders({});
    unconfirmed = orders.find((o) => o.idempotencyKey === slowKey);
  }
  check(
    unconfirmed?.status === OrderStatus.PAYMENT_UNCONFIRMED,
    "the timed-out order is recorded as PAYMENT_UNCONFIRMED",
  );
  show(`${green("✓")} the order was recorded first, and says so: ${yellow(status(unconfirmed))}`);

  step(
    "Retry CreateOrder with the same idempotency key",
    "Retries are safe: the same key returns the same order, and payment-service charges at most once per order.",
  );
  const { order: settled } = await ada.orders.createOrder(slowRequest, { timeoutMs: 10_000 });
  check(
    settled?.id === unconfirmed?.id && settled?.status === OrderStatus.PAID,
    "the retry settles the same order",
  );
  show(`${green("✓")} the slow order settles on retry: ${settled.id} ${green(status(settled))}`);
  const { order: again } = await ada.orders.createOrder({
    userId: user.id,
    items: cart,
    idempotencyKey: paidKey,
    paymentToken: "tok_visa",
  });
  check(again?.id === paid.id, "a retried CreateOrder returns the same order");
  const { payments } = await ada.payments.listPayments({ orderId: paid.id });
  check(payments.length === 1, "one payment for the retried order");
  show(
    `${green("✓")} retrying the first order returns ${again.id} again; payments for it: ${payments.length}`,
  );

  step(
    "Cancel the paid order",
    "order-service refunds through payment-service, with a key derived from the order: cancelling twice refunds once.",
  );
  const { order: cancelled } = await ada.orders.cancelOrder({
    id: paid.id,
    reason: "changed my mind",
  });
  await ada.orders.cancelOrder({ id: paid.id });
  const { payment } = await ada.payments.getPayment({ id: paid.paymentId });
  check(
    cancelled?.status === OrderStatus.CANCELLED && payment?.status === PaymentStatus.REFUNDED,
    "cancel refunds",
  );
  show(
    `${green("✓")} order ${cancelled.id}: ${status(cancelled)}; payment ${PaymentStatus[payment.status]} (${money(payment.refundedAmount)})`,
  );

  step(
    "Authorization",
    "Customers see only their own data; Charge is only for order-service or an admin.",
  );
  const charge = await ada.payments
    .charge({
      orderId: paid.id,
      userId: user.id,
      amount: paid.total,
      paymentToken: "tok_visa",
      idempotencyKey: "mine",
    })
    .catch((e: unknown) => ConnectError.from(e));
  check(
    charge instanceof ConnectError && charge.code === Code.PermissionDenied,
    "Ada may not call Charge",
  );
  show(
    `${green("✓")} Ada calling PaymentService/Charge: ${yellow(codeName(charge))}: ${charge.rawMessage}`,
  );

  // Every change above reaches the watch: 3 orders created, 5 status changes.
  const expected = 8;
  const waitUntil = Date.now() + 10_000;
  while (seen.length < expected && Date.now() < waitUntil) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  watching.abort();
  await feed;
  check(seen.length === expected, `the watch saw ${expected} events (saw ${seen.length})`);
  print("");
  print(bold(`The watch feed delivered all ${seen.length} events, in commit order.`));
  return { email, password, token: accessToken, userId: user.id };
}

/** What to paste into a shell to call the running system by hand. */
export function tryItYourself(urls: Record<ServiceName, string>, result: ScenarioResult): string[] {
  const users = urls["user-service"];
  const orders = urls["order-service"];
  return [
    bold("Try it yourself") + dim(" (the system keeps running; Ctrl-C stops it)"),
    "",
    dim("# Connect protocol, JSON over HTTP/1.1, with curl: sign in, then list Ada's orders"),
    `TOKEN=$(curl -s ${users}/meridian.user.v1.UserService/Authenticate -H 'content-type: application/json' \\`,
    `  -d '{"email":"${result.email}","password":"${result.password}"}' | sed -E 's/.*"accessToken":"([^"]+)".*/\\1/')`,
    `curl -s ${orders}/meridian.order.v1.OrderService/ListOrders -H 'content-type: application/json' \\`,
    `  -H "authorization: Bearer $TOKEN" -d '{}'`,
    "",
    dim("# The gRPC protocol with buf curl (from the repository root; schemas from proto/)"),
    `npx buf curl --protocol grpc --http2-prior-knowledge --schema proto \\`,
    `  -H "authorization: Bearer $TOKEN" -d '{}' ${orders}/meridian.order.v1.OrderService/ListOrders`,
    "",
    dim("# Watch orders live (server streaming), then place one from another shell"),
    `npx buf curl --protocol grpc --http2-prior-knowledge --schema proto \\`,
    `  -H "authorization: Bearer $TOKEN" -d '{}' ${orders}/meridian.order.v1.OrderService/WatchOrders`,
    `npx buf curl --protocol grpc --http2-prior-knowledge --schema proto -H "authorization: Bearer $TOKEN" \\`,
    `  -d '{"userId":"${result.userId}","items":[{"sku":"STICKER-004","quantity":3}],"idempotencyKey":"try-1","paymentToken":"tok_visa"}' \\`,
    `  ${orders}/meridian.order.v1.OrderService/CreateOrder`,
    "",
    dim("# Health (public), over the gRPC health protocol"),
    `npx buf curl --protocol grpc --http2-prior-knowledge --schema proto ${users}/grpc.health.v1.Health/Check`,
  ];
}
