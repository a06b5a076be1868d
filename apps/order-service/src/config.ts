import { loadConfig, neighbourUrl, serviceConfig, signingKeyConfig } from "@meridian/platform";

export const orderServiceConfig = {
  ...serviceConfig({ port: 50052, dataDir: ".data/order-service" }),
  ...signingKeyConfig(),
  /** user-service: checked for the ordering user; its keys verify user tokens. */
  USER_SERVICE_URL: neighbourUrl("http://127.0.0.1:50051"),
  /** payment-service: charges and refunds. */
  PAYMENT_SERVICE_URL: neighbourUrl("http://127.0.0.1:50053"),
};

export type OrderServiceConfig = ReturnType<typeof loadOrderServiceConfig>;

export function loadOrderServiceConfig(env: Record<string, string | undefined> = process.env) {
  return loadConfig(orderServiceConfig, env);
}
