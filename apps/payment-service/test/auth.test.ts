import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { TokenSigner } from "@meridian/platform";
import { HealthCheckResponse_ServingStatus } from "@meridian/proto/grpc/health/v1/health_pb";
import { PaymentStatus } from "@meridian/proto/meridian/payment/v1/payment_pb";
import {
  callError,
  startTestIssuer,
  type TestDatabase,
  type TestIssuer,
  testDatabaseKinds,
} from "@meridian/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newCharge, type ServiceUnderTest, startForTest } from "./harness.js";

const databaseKinds = await testDatabaseKinds();

describe.each(databaseKinds)("PaymentService auth on $name", (kind) => {
  let db: TestDatabase;
  let service: ServiceUnderTest;
  /** Claims to be user-service, but with a key user-service does not publish. */
  let impostor: TestIssuer;
  /** An issuer payment does not trust at all. */
  let stranger: TestIssuer;
  beforeAll(async () => {
    db = await kind.create();
    service = await startForTest(db);
    impostor = await startTestIssuer("user-service");
    stranger = await startTestIssuer("shipping-service");
  });
  afterAll(async () => {
    await service?.stop();
    await impostor?.close();
    await stranger?.close();
    await db?.drop();
  });

  describe("authentication", () => {
    it("refuses a call without a token", async () => {
      const error = await callError(service.client("grpc", null).charge(newCharge()));
      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.rawMessage).toContain("authorization: Bearer");
      const list = await callError(service.client("connect-json", null).listPayments({}));
      expect(list.code).toBe(Code.Unauthenticated);
    });

    it("refuses a token that is not a JWT", async () => {
      const error = await callError(service.client("grpc", "garbage").getPayment({ id: "x" }));
      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.rawMessage).toBe("the bearer token is not a JWT");
    });

    it("refuses an expired token", async () => {
      const expired = await service.orders.serviceToken(-60);
      const error = await callError(service.client("grpc", expired).charge(newCharge()));
      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.rawMessage).toBe("the token has expired; authenticate again");
    });

    it("refuses a token signed with a key its issuer does not publish", async () => {
      const forged = await impostor.userToken(randomUUID(), ["admin"]);
      const error = await callError(service.client("grpc", forged).listPayments({}));
      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.rawMessage).toBe("the token was signed with a key its issuer does not publish");
    });

    it("refuses a token from an issuer it does not trust", async () => {
      const token = await stranger.serviceToken();
      const error = await callError(service.client("grpc", token).charge(newCharge()));
      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.rawMessage).toBe('tokens from issuer "shipping-service" are not trusted');
    });

    it("refuses order-service tokens that speak for someone else", async () => {
      const signer = new TokenSigner("order-service", service.orders.key);
      const { token } = await signer.sign({
        subject: randomUUID(),
        roles: ["admin"],
        ttlSeconds: 60,
      });
      const error = await callError(service.client("grpc", token).listPayments({}));
      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.rawMessage).toBe('issuer "order-service" may only issue tokens for itself');
    });

    it("answers health checks without a token", async () => {
      const { status } = await service.health().check({});
      expect(status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    });
  });

  describe("authorization", () => {
    it("lets order-service and admins charge and refund, and no customer", async () => {
      const byOrders = await service.client().charge(newCharge());
      expect(byOrders.payment?.status).toBe(PaymentStatus.SUCCEEDED);
      const admin = await service.asUser(randomUUID(), ["admin"]);
      const byAdmin = await admin.charge(newCharge());
      expect(byAdmin.payment?.status).toBe(PaymentStatus.SUCCEEDED);
      await admin.refund({
        paymentId: byAdmin.payment?.id,
        idempotencyKey: randomUUID(),
        reason: "goodwill",
      });

      const userId = randomUUID();
      const customer = await service.asUser(userId);
      // Even for themselves, and even with an invalid request: who comes before what.
      const charge = await callError(customer.charge(newCharge({ userId })));
      expect(charge.code).toBe(Code.PermissionDenied);
      expect(charge.rawMessage).toBe(
        `user ${userId} may not charge payments; only order-service or an admin may`,
      );
      expect((await callError(customer.charge({}))).code).toBe(Code.PermissionDenied);
      const refund = await callError(
        customer.refund({
          paymentId: byOrders.payment?.id,
          idempotencyKey: randomUUID(),
          reason: "I want my money back",
        }),
      );
      expect(refund.code).toBe(Code.PermissionDenied);
      expect(refund.rawMessage).toBe(
        `user ${userId} may not refund payments; only order-service or an admin may`,
      );
    });

    it("lets customers read their own payments only", async () => {
      const alice = randomUUID();
      const bob = randomUUID();
      const { payment: alices } = await service.client().charge(newCharge({ userId: alice }));
      const { payment: bobs } = await service.client().charge(newCharge({ userId: bob }));
      const asAlice = await service.asUser(alice);

      const own = await asAlice.getPayment({ id: alices?.id });
      expect(own.payment).toEqual(alices);
      const other = await callError(asAlice.getPayment({ id: bobs?.id }));
      expect(other.code).toBe(Code.PermissionDenied);
      expect(other.rawMessage).toBe(
        `payment ${bobs?.id} belongs to another user; customers may only see their own payments`,
      );

      // Without a user filter a customer gets their own; naming someone else is refused.
      const mine = await asAlice.listPayments({});
      expect(mine.payments).toEqual([alices]);
      expect((await asAlice.listPayments({ userId: alice })).payments).toEqual([alices]);
      const theirs = await callError(asAlice.listPayments({ userId: bob }));
      expect(theirs.code).toBe(Code.PermissionDenied);
      expect(theirs.rawMessage).toBe(`user ${alice} may not list payments of user ${bob}`);
      // Filtering by someone else's order finds nothing of theirs.
      expect((await asAlice.listPayments({ orderId: bobs?.orderId })).payments).toEqual([]);
    });

    it("lets admins and order-service read anyone's payments", async () => {
      const userId = randomUUID();
      const { payment } = await service.client().charge(newCharge({ userId }));
      const admin = await service.asUser(randomUUID(), ["admin"], "connect-json");
      expect((await admin.getPayment({ id: payment?.id })).payment).toEqual(payment);
      expect((await admin.listPayments({ userId })).payments).toEqual([payment]);
      expect((await service.client().getPayment({ id: payment?.id })).payment).toEqual(payment);
      expect((await service.client().listPayments({ userId })).payments).toEqual([payment]);
    });
  });
});
