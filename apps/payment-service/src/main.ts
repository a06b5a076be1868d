import { runService } from "@meridian/platform";
import { startPaymentService } from "./app.js";
import { paymentServiceConfig } from "./config.js";

await runService({
  name: "payment-service",
  config: paymentServiceConfig,
  logLevel: (config) => config.LOG_LEVEL,
  start: startPaymentService,
});
