import { env, loadConfig, neighbourUrl, serviceConfig } from "@meridian/platform";

export const paymentServiceConfig = {
  ...serviceConfig({ port: 50053, dataDir: ".data/payment-service" }),
  /**
   * Payment calls no neighbour: it only fetches the public keys of the
   * services whose tokens it accepts (user-service for people, order-service
   * for itself) from their /.well-known/jwks.json.
   */
  USER_SERVICE_URL: neighbourUrl("http://127.0.0.1:50051"),
  ORDER_SERVICE_URL: neighbourUrl("http://127.0.0.1:50052"),
  /** How long the simulated processor takes to answer for the token tok_slow. */
  PROCESSOR_SLOW_MS: env.int(3000, { min: 0, max: 600_000 }),
};

export type PaymentServiceConfig = ReturnType<typeof loadPaymentServiceConfig>;

export function loadPaymentServiceConfig(env: Record<string, string | undefined> = process.env) {
  return loadConfig(paymentServiceConfig, env);
}
