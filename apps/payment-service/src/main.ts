import { runService } from "@meridian/platform";
import { startPaymentService } from "./app.js";
import { loadPaymentServiceConfig } from "./config.js";

await runService({
  name: "payment-service",
  loadConfig: () => loadPaymentServiceConfig(),
  logLevel: (config) => config.LOG_LEVEL,
  start: startPaymentService,
});
