import { runService } from "@meridian/platform";
import { startOrderService } from "./app.js";
import { orderServiceConfig } from "./config.js";

await runService({
  name: "order-service",
  config: orderServiceConfig,
  logLevel: (config) => config.LOG_LEVEL,
  start: startOrderService,
});
